#!/usr/bin/env bash
# `make run`: the main job on the bundled corpus, end to end on 2 MPI ranks —
# tokenize (inputs/redpajama-mini → HDF5 shards), train the small preset
# (inputs/quickstart.deck), evaluate on the held-out split, print a greedy
# sample.  Metrics go to runs/quickstart/metrics.jsonl.
#
# DECK=FILE runs another deck the same way (`make run-spm`:
# inputs/quickstart-spm.deck, a LLaMA-style SentencePiece vocabulary): the
# corpus is tokenized with the deck's `tokenizer` into its `dataset` folder,
# and that folder's parent under runs/ (the run folder) is made afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RANKS=${RANKS:-2}
DECK=${DECK:-inputs/quickstart.deck}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpirun=(mpirun --oversubscribe -np "$RANKS" -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)

# deck_value KEY: the value of `KEY = value` in the deck (comments and quotes off).
deck_value() {
  sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$DECK" | sed -E 's/(^|[[:space:]])#.*//; s/[[:space:]]+$//; s/^"(.*)"$/\1/' | tail -n 1
}
[ -f "$DECK" ] || { echo "quickstart: no deck '$DECK'" >&2; exit 1; }
TOKENIZER=$(deck_value tokenizer)
DATA=$(deck_value dataset)
RUN_DIR=$(dirname "$DATA")
if [ -z "$TOKENIZER" ] || [ -z "$DATA" ] || [[ "$RUN_DIR" != runs/* ]]; then
  echo "quickstart: $DECK needs 'tokenizer = FILE' and 'dataset = runs/<run>/<folder>'" >&2
  exit 1
fi

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
echo "== tokenizing the bundled corpus on $RANKS ranks ($TOKENIZER)"
"${mpirun[@]}" "$BUILD/llama-tokenize" encode --tokenizer "$TOKENIZER" \
  --input inputs/redpajama-mini --output "$DATA" --val-fraction 0.02
echo "== training on $RANKS ranks ($DECK)"
"${mpirun[@]}" "$BUILD/llama-train" "$DECK" "$@"
echo "== metrics: $(deck_value log); checkpoints: $(deck_value save-dir)"
