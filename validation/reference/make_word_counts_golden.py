#!/usr/bin/env python3
"""The independent reference for the BPE trainer's word counts
(validation/unit/test_tokenizer.c, word_counts_match_hf_pretokenizer): the
Hugging Face `tokenizers` ByteLevel pre-tokenizer (GPT-2 regex, no prefix
space: the bundled tokenizer's) over the texts of the first documents of
inputs/redpajama-mini/wikipedia_sample.jsonl, concatenated as the test reads
them, whole documents up to 400,000 bytes.  Writes validation/golden/word-counts.json:
n_bytes, the number of words and of distinct words, the SHA-256 of every
distinct word and its count ("<hex of the word's bytes> <count>\\n" lines in
byte order of the words), and the 50 most frequent for diagnostics.  Run once:
    python3 validation/reference/make_word_counts_golden.py
"""
import collections
import hashlib
import json

import tokenizers
from tokenizers.pre_tokenizers import ByteLevel

SRC = "inputs/redpajama-mini/wikipedia_sample.jsonl"
LIMIT = 400_000

text, n_bytes = [], 0
with open(SRC, encoding="utf-8") as f:
    for line in f:
        t = json.loads(line)["text"].encode("utf-8")
        if n_bytes + len(t) > LIMIT:
            break
        text.append(t)
        n_bytes += len(t)
corpus = b"".join(text).decode("utf-8")

# ByteLevel's characters back to bytes (GPT-2's bytes_to_unicode, inverted)
printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
    list(range(ord("®"), ord("ÿ") + 1))
codes, n = printable[:], 0
for b in range(256):
    if b not in printable:
        printable.append(b)
        codes.append(256 + n)
        n += 1
byte_of = {chr(c): b for b, c in zip(printable, codes)}

pt = ByteLevel(add_prefix_space=False, use_regex=True)
counts = collections.Counter(bytes(byte_of[c] for c in w) for w, _ in pt.pre_tokenize_str(corpus))
lines = b"".join(w.hex().encode() + b" %d\n" % counts[w] for w in sorted(counts))
golden = {"source": SRC, "n_bytes": n_bytes, "words": sum(counts.values()),
          "distinct": len(counts), "sha256": hashlib.sha256(lines).hexdigest(),
          "top": [[w.hex(), c] for w, c in counts.most_common(50)],
          "tokenizers": tokenizers.__version__}
with open("validation/golden/word-counts.json", "w") as f:
    json.dump(golden, f)
    f.write("\n")
print(n_bytes, "bytes,", golden["words"], "words,", golden["distinct"], "distinct")
