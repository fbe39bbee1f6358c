#!/usr/bin/env python3
"""Reference ids for the tokenizer parity test (validation/unit/test_tokenizer_parity.c).

Run once, by hand, when a tokenizer or the corpus changes (Python with the
`tokenizers` package; never at test time):

    python3 validation/reference/make_tokenizer_golden.py

It
  1. trains two reference tokenizers with the Hugging Face `tokenizers` library
     on inputs/redpajama-mini/*.jsonl:
       gpt2-style.json   ByteLevel BPE as GPT-2 (ByteLevel pre-tokenizer with
                         its regex, <|endoftext|>)
       llama3-style.json LLaMA-3 layout: Split(LLaMA-3 regex) + ByteLevel
                         (use_regex=false), ignore_merges, TemplateProcessing
                         adding <|begin_of_text|>, <|end_of_text|> special
  2. encodes, with the `tokenizers` library, every corpus document and a
     seeded set of fuzz strings (mixed scripts, odd whitespace, contractions,
     special tokens, random code points) with each of those two and with the
     bundled inputs/tokenizer.json (made by `llama-tokenize train`);
  3. writes golden/<name>.bin (little-endian):
       "LLTKGLD1"
       u32 n_docs; n_docs x (u32 n_ids, 8 bytes: SHA-256 of the ids as u32 LE, first 8)
         -- corpus documents in file order (sorted file names, line order,
            empty texts skipped), encode(text, add_special_tokens=True)
       u32 n_full; n_full x (u32 doc index, u32 n, n x u32 id)
         -- the full ids of a few documents, for diagnostics
       u32 n_fuzz; n_fuzz x (u32 n_bytes, bytes, u32 n, n x u32 id)
         -- fuzz strings, encode(text, add_special_tokens=False)
"""
import glob, hashlib, json, os, random, struct, sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = sorted(glob.glob(os.path.join(ROOT, "inputs", "redpajama-mini", "*.jsonl")))
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
VOCAB = 4096


def documents():
    for path in CORPUS:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    text = json.loads(line)["text"]
                    if text:
                        yield text


def train_gpt2_style():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(documents(), trainer)
    return tok


def train_llama3_style():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(documents(), trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list(" .,;:!?'\"()[]{}<>|/\\-_=+*&^%$#@~`") + [" "] * 20 + ["\n", "\t", "\r\n", "\r"]
        + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re"]
        + list("éèßÅäöüñçŁπτΩЖжяあいう漢字한국어العربيةहिन्दी") + ["\u0301", "\u0915\u094d"]
        + list("٣४١２") + ["😀", "🚀", "𝔘", "🏳️‍🌈"]
        + ["\u00a0", "\u2028", "\u2029", "\u3000", "\u180e", "\u200b", "\u0085", "\u1680",
           "\u2009", "\u202f", "\ufeff", "\u000b", "\u000c", "\u001c"]
        + ["<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|endoftext|", "<|"]
        + ["   ", "  \n", "\n\n\n", " 123", "12345", " ...", "--", "    def "])


def fuzz_strings(docs):
    rng = random.Random(1234)
    out = []
    for i in range(400):
        kind = i % 4
        if kind == 0:    # tokens from the pool
            s = "".join(rng.choice(POOL) for _ in range(rng.randint(1, 40)))
        elif kind == 1:  # random code points (no surrogates)
            cps = []
            for _ in range(rng.randint(1, 30)):
                r = rng.random()
                cp = (rng.randint(0x20, 0x7E) if r < 0.4 else rng.randint(0x80, 0x2FFF) if r < 0.7
                      else rng.randint(0x3000, 0xFFFF) if r < 0.9 else rng.randint(0x10000, 0x10FFFF))
                if 0xD800 <= cp < 0xE000:
                    cp = 0x20
                cps.append(chr(cp))
            s = "".join(cps)
        elif kind == 2:  # a corpus fragment
            d = docs[rng.randrange(len(docs))]
            a = rng.randrange(len(d))
            s = d[a:a + rng.randint(1, 300)]
        else:            # a fragment with pool insertions
            d = docs[rng.randrange(len(docs))]
            a = rng.randrange(len(d))
            parts = list(d[a:a + rng.randint(1, 120)])
            for _ in range(rng.randint(1, 6)):
                parts.insert(rng.randint(0, len(parts)), rng.choice(POOL))
            s = "".join(parts)
        out.append(s)
    return out


def ids_hash(ids):
    return hashlib.sha256(struct.pack("<%dI" % len(ids), *ids)).digest()[:8]


def write_golden(tok, name, docs, fuzz):
    encs = tok.encode_batch(docs, add_special_tokens=True)
    starts, idx = [], 0  # the first two documents of each file, cut at 2000 ids
    for path in CORPUS:
        n = sum(1 for line in open(path, encoding="utf-8") if line.strip() and json.loads(line)["text"])
        starts += [idx, idx + 1]
        idx += n
    with open(os.path.join(HERE, "golden", name + ".bin"), "wb") as f:
        f.write(b"LLTKGLD1")
        f.write(struct.pack("<I", len(docs)))
        for e in encs:
            f.write(struct.pack("<I", len(e.ids)) + ids_hash(e.ids))
        f.write(struct.pack("<I", len(starts)))
        for s in starts:
            ids = encs[s].ids[:2000]
            f.write(struct.pack("<II", s, len(ids)) + struct.pack("<%dI" % len(ids), *ids))
        f.write(struct.pack("<I", len(fuzz)))
        for s in fuzz:
            b = s.encode("utf-8")
            ids = tok.encode(s, add_special_tokens=False).ids
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<I", len(ids)))
            f.write(struct.pack("<%dI" % len(ids), *ids))
    print("wrote golden/%s.bin: %d documents, %d ids, %d fuzz strings"
          % (name, len(docs), sum(len(e.ids) for e in encs), len(fuzz)))


def main():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    docs = list(documents())
    fuzz = fuzz_strings(docs)
    for name, make in (("gpt2-style", train_gpt2_style), ("llama3-style", train_llama3_style)):
        path = os.path.join(HERE, name + ".json")
        if "--retrain" in sys.argv or not os.path.exists(path):
            make().save(path)
            print("trained", path)
        write_golden(Tokenizer.from_file(path), name, docs, fuzz)
    bundled = os.path.join(ROOT, "inputs", "tokenizer.json")
    if os.path.exists(bundled):
        write_golden(Tokenizer.from_file(bundled), "bundled", docs, fuzz)
    else:
        print("no inputs/tokenizer.json yet (make it with llama-tokenize train); skipped")


if __name__ == "__main__":
    main()
