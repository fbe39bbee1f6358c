#!/usr/bin/env bash
# `make test-full`: every layout of at most 8 ranks with context parallelism
# over 2 ranks trains the same model as one rank (153 runs, about 7 minutes on 2
# cores; the grid: validation/full/layout_grid.inc).
CP_VALUES=2
source "$(dirname "$0")/layout_grid.inc"
