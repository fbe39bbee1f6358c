#!/usr/bin/env bash
# The 1F1B schedule, plain and interleaved, cannot deadlock on the CUDA
# backend's NCCL streams with a communicator per pipeline link and direction
# (and could with shared ones: the negative controls): a model of the
# schedule's host calls and device streams (validation/gpu/pipeline_streams.py).
source "$(dirname "$0")/../lib.sh"
if ! command -v python3 >/dev/null; then skip "1F1B on NCCL streams" "python3 is not installed"; finish; fi
python3 "$ROOT/validation/gpu/pipeline_streams.py"
