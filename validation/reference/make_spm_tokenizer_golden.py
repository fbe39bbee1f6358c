#!/usr/bin/env python3
"""Reference ids for SentencePiece-style (LLaMA-1/2) tokenizer.json files, for
validation/unit/test_tokenizer_parity.c and validation/test_tokenize_shards.sh.

Run once, by hand, when the corpus changes (never at test time).  It needs
`sentencepiece`, `tokenizers` and transformers 4.x (transformers 5 no longer
writes the legacy normalizer form: its LlamaTokenizerFast ignores legacy=True):

    python3 -m venv /tmp/spmvenv
    /tmp/spmvenv/bin/pip install "transformers<5" sentencepiece protobuf
    /tmp/spmvenv/bin/python validation/reference/make_spm_tokenizer_golden.py [--retrain]

It
  1. trains two SentencePiece BPE models on inputs/redpajama-mini/*.jsonl (one
     sentence per line) with LLaMA's settings (identity normalization, digits
     split, whitespace-only pieces, <unk> <s> </s> = 0 1 2):
       bf   vocabulary 3000, byte_fallback=True (<0x00>..<0xFF> pieces)
       unk  vocabulary 2000, byte_fallback=False, character coverage 0.995, so
            rare characters become <unk>
  2. converts them with transformers' LlamaTokenizerFast(vocab_file=...,
     from_slow=True) and saves the tokenizer.json files (compact JSON) here:
       spm-legacy.json     bf,  legacy=True,  add_prefix_space=True: normalizer
                           Sequence[Prepend("▁"), Replace(" ", "▁")], no
                           pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip
       spm-metaspace.json  bf,  legacy=False, add_prefix_space=True: Metaspace
                           pre-tokenizer (prepend_scheme "first", split false)
       spm-unk.json        unk, legacy=True, add_prefix_space left unset (no
                           prefix: normalizer Replace only); model byte_fallback
                           set false, as the model was trained
       spm-unk-split.json  unk, the older generic SentencePiece form: no
                           normalizer, Metaspace(prepend_scheme "always",
                           split true) pre-tokenizer and Metaspace decoder
     (LlamaTokenizerFast adds the TemplateProcessing post-processor with <s>).
  3. writes golden/<name>.bin in the format of make_tokenizer_golden.py
     (corpus documents with encode(add_special_tokens=True): count and SHA-256
     prefix per document; the first 300 ids of 3 documents; "fuzz" strings --
     here the hard strings below, then the first 160 of make_tokenizer_golden's
     seeded fuzz strings -- with encode(add_special_tokens=False) ids), then
     two decode sections:
       u32 n; n x (u32 n_bytes, 8 bytes SHA-256 prefix)
         -- decode(ids of fuzz string i, skip_special_tokens=False), UTF-8
       u32 n_docs; n_docs x (u32 n_bytes, 8 bytes SHA-256 prefix)
         -- decode(encode(doc, add_special_tokens=False).ids)
     and one of seeded random id sequences (special tokens, runs of <0xNN>
     tokens that are and are not UTF-8, any vocabulary token):
       u32 n; n x (u32 n_ids, n_ids x u32 id, u32 n_bytes, 8 bytes SHA-256 prefix)
  4. writes golden/<name>-c4-shard.txt for spm-legacy: n_documents, n_tokens
     and tokens_sha256 (int32 LE) of what `llama-tokenize encode --val-fraction
     0` writes for c4_sample.jsonl (every document: its ids with <s>, then </s>).
"""
import hashlib, json, os, random, struct, sys

import sentencepiece as spm
from tokenizers import Tokenizer, decoders, pre_tokenizers
from transformers import LlamaTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_tokenizer_golden import CORPUS, documents, fuzz_strings, ids_hash  # noqa: E402

WORK = os.environ.get("SPM_WORK", "/tmp/spm-golden-models")  # the trained .model files

HARD = [
    "", " ", "  ", "   ", "\n", "\t", "\r\n", "   leading spaces", "trailing spaces   ",
    "multiple   inner    spaces", " one leading", "one trailing ", "a\nb\n\nc\n", "\n\nstarts",
    "\ttabs\tand\ttabs\t", "mixed \t \n whitespace \r\n end", "tab\t\tnewline\n\n  indent",
    "😀", "🚀 rocket", "emoji 😀😃😄 row", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "🏳️‍🌈 flag", "a😀b", "😀 ",
    "漢字かなカナ한국어", "中文测试 and English", "日本語のテキスト。", "0123456789", "3.14159",
    "2024-01-01 12:34:56", "1,000,000 and 42", "x1y22z333", "café naïve façade ñandú",
    "Ω≈ç√∫˜µ≤≥÷", "ẞ ǅ ǈ ﬁ", "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "\ufeffbom",
    "line\u2028separator", "\u0001\u0002\u007f control", "Ю ж я Ђ", "עברית ערבית العربية",
    "हिन्दी", "<s>", "</s>", "<unk>", "<s>Hello world</s>", "Hello <s> world", "a </s> b",
    "x<unk>y", "<s><s></s></s>", " <s> ", "<s> leading", "<s", "s>", "</ s>", "<0x41>", "<0x0A>",
    "▁", "▁▁word", "word▁ ▁", "the quick brown fox", "The Quick BROWN fox.", "don't won't I'm",
    "def f(x):\n    return x * 2  # comment\n", "{\"key\": [1, 2, 3]}", "http://example.com/a?b=c",
    "a" * 300, "ab " * 60, "\U0010FFFF\U000E0001", "é\u0301 combining",
]


def train(name, vocab, byte_fallback, coverage):
    path = os.path.join(WORK, name)
    if "--retrain" not in sys.argv and os.path.exists(path + ".model"):
        return path + ".model"

    def sentences():
        for d in documents():
            for line in d.split("\n"):
                if line.strip():
                    yield line
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(), model_prefix=path, vocab_size=vocab, model_type="bpe",
        byte_fallback=byte_fallback, split_digits=True, allow_whitespace_only_pieces=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        character_coverage=coverage, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=100000, num_threads=2, minloglevel=2)
    return path + ".model"


def convert(model, **kw):
    return LlamaTokenizerFast(vocab_file=model, from_slow=True, **kw).backend_tokenizer


def make_tokenizers():
    os.makedirs(WORK, exist_ok=True)
    bf = train("bf", 3000, True, 0.9995)
    unk = train("unk", 2000, False, 0.995)
    legacy = convert(bf, legacy=True, add_prefix_space=True)
    metaspace = convert(bf, legacy=False, add_prefix_space=True)
    unk_plain = Tokenizer.from_str(_set_byte_fallback(convert(unk, legacy=True), False))
    unk_split = Tokenizer.from_str(_set_byte_fallback(convert(unk, legacy=True), False))
    unk_split.normalizer = None
    unk_split.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                       split=True)
    unk_split.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return {"spm-legacy": legacy, "spm-metaspace": metaspace, "spm-unk": unk_plain,
            "spm-unk-split": unk_split}


def _set_byte_fallback(tok, on):
    j = json.loads(tok.to_str())
    j["model"]["byte_fallback"] = on
    return json.dumps(j)


def sha8(b):
    return hashlib.sha256(b).digest()[:8]


def random_id_lists(tok):
    rng = random.Random(99)
    vocab = tok.get_vocab_size()
    byte_id = [tok.token_to_id("<0x%02X>" % b) for b in range(256)]
    out = []
    for _ in range(120):
        ids = []
        while len(ids) < rng.randint(1, 25):
            r = rng.random()
            if r < 0.4 and byte_id[0] is not None:  # the bytes of a character, maybe cut
                cp = rng.choice([rng.randint(0x20, 0x7E), rng.randint(0x80, 0x7FF),
                                 rng.randint(0x800, 0xD7FF), rng.randint(0x10000, 0x10FFFF)])
                b = chr(cp).encode("utf-8")
                if rng.random() < 0.3:
                    b = b[:rng.randint(0, len(b))] if rng.random() < 0.7 else b[1:]
                ids += [byte_id[x] for x in b]
            elif r < 0.5:
                ids.append(rng.randint(0, 2))
            else:
                ids.append(rng.randrange(vocab))
        out.append(ids)
    return out


def write_golden(tok, name, docs, strings):
    encs = tok.encode_batch(docs, add_special_tokens=True)
    starts, idx = [], 0  # the first document of each corpus file, cut at 300 ids
    for path in CORPUS:
        n = sum(1 for line in open(path, encoding="utf-8") if line.strip() and json.loads(line)["text"])
        starts.append(idx)
        idx += n
    fuzz_ids = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    plain = tok.encode_batch(docs, add_special_tokens=False)
    with open(os.path.join(HERE, "golden", name + ".bin"), "wb") as f:
        f.write(b"LLTKGLD1")
        f.write(struct.pack("<I", len(docs)))
        for e in encs:
            f.write(struct.pack("<I", len(e.ids)) + ids_hash(e.ids))
        f.write(struct.pack("<I", len(starts)))
        for s in starts:
            ids = encs[s].ids[:300]
            f.write(struct.pack("<II", s, len(ids)) + struct.pack("<%dI" % len(ids), *ids))
        f.write(struct.pack("<I", len(strings)))
        for s, ids in zip(strings, fuzz_ids):
            b = s.encode("utf-8")
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<I", len(ids)))
            f.write(struct.pack("<%dI" % len(ids), *ids))
        f.write(struct.pack("<I", len(strings)))
        for ids in fuzz_ids:
            d = tok.decode(ids, skip_special_tokens=False).encode("utf-8")
            f.write(struct.pack("<I", len(d)) + sha8(d))
        f.write(struct.pack("<I", len(docs)))
        same = 0
        for text, e in zip(docs, plain):
            d = tok.decode(e.ids, skip_special_tokens=False)
            same += d == text
            d = d.encode("utf-8")
            f.write(struct.pack("<I", len(d)) + sha8(d))
        lists = random_id_lists(tok)
        f.write(struct.pack("<I", len(lists)))
        for ids in lists:
            d = tok.decode(ids, skip_special_tokens=False).encode("utf-8")
            f.write(struct.pack("<I", len(ids)) + struct.pack("<%dI" % len(ids), *ids))
            f.write(struct.pack("<I", len(d)) + sha8(d))
    print("wrote golden/%s.bin: %d documents (%d decode to their text), %d ids, %d strings"
          % (name, len(docs), same, sum(len(e.ids) for e in encs), len(strings)))


def write_shard_golden(tok, name):
    docs = [json.loads(line)["text"] for line in open(CORPUS[0], encoding="utf-8") if line.strip()]
    docs = [d for d in docs if d]
    eos = tok.token_to_id("</s>")
    ids = []
    for e in tok.encode_batch(docs, add_special_tokens=True):
        ids += e.ids + [eos]
    digest = hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()
    with open(os.path.join(HERE, "golden", name + "-c4-shard.txt"), "w") as f:
        f.write("n_documents: %d\nn_tokens: %d\ntokens_sha256: %s\n" % (len(docs), len(ids), digest))
    print("wrote golden/%s-c4-shard.txt" % name)


def main():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    docs = list(documents())
    strings = HARD + fuzz_strings(docs)[:160]
    for name, tok in make_tokenizers().items():
        path = os.path.join(HERE, name + ".json")
        tok.save(path, pretty=False)
        print("wrote", path)
        tok = Tokenizer.from_file(path)
        write_golden(tok, name, docs, strings)
        if name == "spm-legacy":
            write_shard_golden(tok, name)


if __name__ == "__main__":
    main()
