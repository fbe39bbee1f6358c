#!/usr/bin/env bash
# Installs the Debian packages llama-hpc builds and tests with, when any is missing.
# Called by `make` (target `deps`); safe to run again: it does nothing when all is there.
set -euo pipefail

packages=(
  build-essential pkg-config
  openmpi-bin libopenmpi-dev          # MPI: the process grid and CPU collectives
  libhdf5-openmpi-dev hdf5-tools      # parallel HDF5 (token shards, checkpoints); h5dump/h5ls
  libdnnl-dev                         # oneDNN: the CPU backend's sgemm (the default BLAS)
  libopenblas-openmp-dev              # sgemm with make BLAS=openblas (the OpenMP build, so it nests
                                      # under our OpenMP); the tests' plain compiles find cblas.h here
  libjansson-dev                      # JSON: corpus records, tokenizer.json, safetensors headers
  libpcre2-dev                        # the tokenizer's Unicode pre-tokenizer regex
  libzstd-dev                         # .jsonl.zst corpora
  libssl-dev                          # SHA-256 (tokenizer hash)
  libsentencepiece-dev                # SentencePiece tokenizer.model files (LLaMA-1/2 vocabularies)
  gnuplot-nox                         # plots of metrics and scaling studies
  time                                # /usr/bin/time: peak memory in the tests
  curl unzip                          # cudnn-frontend's headers from PyPI (jobs/fetch-cudnn-frontend.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: missing packages ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
