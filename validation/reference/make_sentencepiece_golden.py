#!/usr/bin/env python3
"""Reference ids for SentencePiece tokenizer.model files
(validation/unit/test_sentencepiece.c, validation/test_sentencepiece.sh).

Run once, by hand, when a model or the corpus changes (never at test time),
with the `sentencepiece` Python package of the same version as the C++
library llama-hpc links (Debian 12's libsentencepiece-dev is 0.1.97; the
trainer's output differs between versions, encoding does not), plus
`tokenizers` (this script reuses make_tokenizer_golden.py's writer):

    python3 -m venv /tmp/spm097
    /tmp/spm097/bin/pip install sentencepiece==0.1.97 tokenizers
    /tmp/spm097/bin/python validation/reference/make_sentencepiece_golden.py

It
  1. trains with the `sentencepiece` package on inputs/redpajama-mini/*.jsonl
     (the documents' non-empty lines, '\\n'-split, are the sentences):
       spm-llama-bpe-c4.model  BPE with LLaMA's settings -- exactly those of
                               `llama-tokenize train --kind sentencepiece`
                               (byte fallback, split digits, identity
                               normalization, ...) on c4_sample.jsonl only,
                               vocabulary 1000: test_sentencepiece.sh checks
                               that llama-tokenize trains the same bytes
       spm-unigram.model       unigram, vocabulary 2000, the package's
                               defaults (nmt_nfkc normalization, extra
                               whitespace removed, no byte fallback: unknown
                               characters become <unk>), on every file
  2. encodes with each of them and with the bundled inputs/tokenizer-spm.model
     (made by `llama-tokenize train --kind sentencepiece --vocab-size 8192`)
     every corpus document ([BOS] + sp.encode(text), as LLaMA adds BOS), a
     list of hard strings and the seeded fuzz strings of
     make_tokenizer_golden.py (sp.encode(text)); writes golden/<name>.bin in
     make_tokenizer_golden.py's format ("LLTKGLD1", see there), the hard
     strings first among the fuzz strings;
  3. writes golden/<name>.decoded.bin: "LLSPDEC1", u32 n, n x (u32 n_bytes,
     bytes): sp.decode(ids) of every fuzz string's ids, in the same order;
  4. for the bundled model, golden/bundled-spm-shards.txt: what
     `llama-tokenize encode --val-fraction 0` must write, one line per shard
     "<source>.train.h5 <n_documents> <n_tokens> <SHA-256 of the tokens as
     int32 LE>", a document being [BOS] + sp.encode(text) + [EOS].
"""
import hashlib
import io, json, os, struct, sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_golden as mtg  # noqa: E402  (documents, fuzz strings, writer)

HERE = mtg.HERE
ROOT = mtg.ROOT
LIBRARY_VERSION = "0.1.97"  # Debian 12's libsentencepiece

# LLaMA's trainer settings, as io/tokenizer/sentencepiece_model.cc's llama_bpe_spec.
LLAMA_BPE = dict(model_type="bpe", character_coverage=0.99995, split_digits=True,
                 byte_fallback=True, allow_whitespace_only_pieces=True,
                 remove_extra_whitespaces=False, normalization_rule_name="identity",
                 add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                 max_sentencepiece_length=16, max_sentence_length=4192,
                 input_sentence_size=0, num_threads=1, minloglevel=1)

HARD = ["", " ", "  ", "   leading spaces", "trailing spaces   ", "many    inner     spaces",
        "\n", "\n\n\n", "line one\nline two\n", "\r\n", "\t", "a\tb\t\tc", " \t \n ",
        "😀", "🚀 launch 🚀", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🏳️‍🌈", "漢字とかなカナ", "한국어 텍스트", "中文，标点。",
        "12345", "3.14159", "x = 10 + 200 * 3000", "0001", "phone: 555-0199",
        "ꙮ", "\u0000", "a\u0000b", "\u00a0nbsp", "zero\u200bwidth", "\u3000ideographic",
        "ﬁ ligature", "Ⅻ ①", "ＡＢＣ full width", "e\u0301 combining", "Ωmega ß straße",
        "<s>", "</s>", "<unk>", "<s>hello</s>", "<0x41>", "▁", "▁hello", "hello▁world",
        "def f(x):\n    return x  # comment\n", "    indented", "--==**##",
        "The quick brown fox jumps over the lazy dog."]


def lines_of(docs):
    return [line for d in docs for line in d.split("\n") if line]


def train(path, sentences, **spec):
    if spm.__version__ != LIBRARY_VERSION:
        sys.exit("training needs sentencepiece==%s (the C++ library's version), this is %s"
                 % (LIBRARY_VERSION, spm.__version__))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, **spec)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    print("trained", path)


class Encoded:
    def __init__(self, ids):
        self.ids = ids


class SpmAsTokenizer:
    """What mtg.write_golden calls: encode_batch and encode with .ids."""

    def __init__(self, sp):
        self.sp = sp

    def encode(self, text, add_special_tokens=False):
        bos = [self.sp.bos_id()] if add_special_tokens and self.sp.bos_id() >= 0 else []
        return Encoded(bos + self.sp.encode(text))

    def encode_batch(self, texts, add_special_tokens=False):
        return [self.encode(t, add_special_tokens) for t in texts]


def write_decoded(sp, name, fuzz):
    with open(os.path.join(HERE, "golden", name + ".decoded.bin"), "wb") as f:
        f.write(b"LLSPDEC1" + struct.pack("<I", len(fuzz)))
        for s in fuzz:
            b = sp.decode(sp.encode(s)).encode("utf-8")
            f.write(struct.pack("<I", len(b)) + b)


def source_of(path, meta):
    meta = meta if isinstance(meta, dict) else {}
    return (meta.get("redpajama_set_name") or meta.get("source")
            or os.path.basename(path).split(".")[0])


def write_shards(model_path, name):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    shards = {}
    for path in mtg.CORPUS:
        for line in open(path, encoding="utf-8"):
            rec = json.loads(line) if line.strip() else {}
            if rec.get("text"):
                ids = [sp.bos_id()] + sp.encode(rec["text"]) + [sp.eos_id()]
                shards.setdefault(source_of(path, rec.get("meta")), []).append(ids)
    with open(os.path.join(HERE, "golden", name + "-shards.txt"), "w") as f:
        for source, docs in sorted(shards.items()):
            ids = [i for d in docs for i in d]
            digest = hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()
            f.write("%s.train.h5 %d %d %s\n" % (source, len(docs), len(ids), digest))
    print("wrote golden/%s-shards.txt" % name)


def write(model_path, name, docs, fuzz, round_trip):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    if round_trip:  # byte fallback, no normalization: decode(encode(s)) == s but for "▁"
        bad = [s for s in fuzz + docs if "\u2581" not in s and sp.decode(sp.encode(s)) != s]
        assert not bad, "%s does not round-trip %r" % (name, bad[:3])
    mtg.write_golden(SpmAsTokenizer(sp), name, docs, fuzz)
    write_decoded(sp, name, fuzz)


def main():
    docs = list(mtg.documents())
    fuzz = HARD + mtg.fuzz_strings(docs)
    c4 = [d for d in (json.loads(l)["text"] for l in open(mtg.CORPUS[0], encoding="utf-8")
                      if l.strip()) if d]
    assert mtg.CORPUS[0].endswith("c4_sample.jsonl")
    models = (("spm-llama-bpe-c4", lambda p: train(p, lines_of(c4), vocab_size=1000, **LLAMA_BPE),
               True),
              ("spm-unigram", lambda p: train(p, lines_of(docs), model_type="unigram",
                                              vocab_size=2000, minloglevel=1), False))
    for name, make, round_trip in models:
        path = os.path.join(HERE, name + ".model")
        if "--retrain" in sys.argv or not os.path.exists(path):
            make(path)
        write(path, name, docs, fuzz, round_trip)
    bundled = os.path.join(ROOT, "inputs", "tokenizer-spm.model")
    if os.path.exists(bundled):
        write(bundled, "bundled-spm", docs, fuzz, True)
        write_shards(bundled, "bundled-spm")
    else:
        print("no inputs/tokenizer-spm.model yet (make it with llama-tokenize train --kind "
              "sentencepiece); skipped")


if __name__ == "__main__":
    main()
