#!/usr/bin/env bash
# Tokenizer speed: llama-tokenize's encoder on one core (bench: corpus in
# memory), llama-tokenize encode end to end on 1 and 2 ranks (JSON parsing,
# tokenizing, HDF5 writing), and, when Python has the `tokenizers` package,
# Hugging Face tokenizers on one thread (TOKENIZERS_PARALLELISM=false) on the
# same documents, for comparison.
#
#   bash jobs/bench-tokenize.sh [CORPUS_DIR] [TOKENIZER.json ...]
# Defaults: the bundled corpus; the bundled tokenizer and the two reference
# tokenizers in validation/reference/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TOK=$BUILD/llama-tokenize
[ -x "$TOK" ] || make --no-print-directory programs >/dev/null
corpus=${1:-inputs/redpajama-mini}
shift || true
tokenizers=("$@")
[ ${#tokenizers[@]} -gt 0 ] || tokenizers=(inputs/tokenizer.json validation/reference/gpt2-style.json
                                            validation/reference/llama3-style.json)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
out=$(mktemp -d "${TMPDIR:-/tmp}/llama-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "== llama-tokenize bench (one core, documents in memory) =="
for t in "${tokenizers[@]}"; do "$TOK" bench --tokenizer "$t" --input "$corpus"; done

echo "== llama-tokenize encode, end to end (read + tokenize + write shards) =="
for n in 1 2; do
  for t in "${tokenizers[@]}"; do
    line=$(mpirun --oversubscribe -np $n --mca btl self,vader "$TOK" encode --tokenizer "$t" \
             --input "$corpus" --output "$out/r$n" --progress 0 --overwrite | head -n 1)
    echo "$n rank(s), $t: ${line#*tokens, }"
  done
done

echo "== Hugging Face tokenizers (one thread) =="
if python3 -c "import tokenizers" 2>/dev/null; then
  python3 - "$corpus" "${tokenizers[@]}" <<'PY'
import glob, json, os, sys, time
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers
from tokenizers import Tokenizer
corpus, paths = sys.argv[1], sys.argv[2:]
docs = [json.loads(l)["text"] for f in sorted(glob.glob(corpus + "/*.jsonl"))
        for l in open(f, encoding="utf-8") if l.strip()]
docs = [d for d in docs if d]
mb = sum(len(d.encode()) for d in docs) / 1e6
for path in paths:
    tok = Tokenizer.from_file(path)
    for mode in ("encode_batch", "encode loop"):
        t0, rounds = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2.0 or rounds == 0:
            if mode == "encode_batch":
                tok.encode_batch(docs)
            else:
                for d in docs:
                    tok.encode(d)
            rounds += 1
        s = time.perf_counter() - t0
        print("tokenizers %s %s: %s: %.2f MB x %d in %.2f s: %.2f MB/s"
              % (tokenizers.__version__, mode, path, mb, rounds, s, mb * rounds / s))
PY
else
  echo "(skipped: Python package tokenizers not installed)"
fi
