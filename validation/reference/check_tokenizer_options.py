#!/usr/bin/env python3
"""The independent reference for the tokenizer.json options the goldens'
tokenizers do not use (validation/unit/test_tokenizer.c, the cases after
"options of tokenizer.json"): added tokens' lstrip, rstrip, single_word and
normalized; Split's behaviours and invert; TemplateProcessing with a token
after $A; Fuse + Strip decoding; Prepend after a Replace that empties the
text; byte-level BPE with unk_token and fuse_unk; Metaspace's prepend schemes
around an added token.  Builds the same tokenizer.json texts as the C test and
asserts, with Hugging Face `tokenizers`, every id list and decoded text that
the C test expects.  Prints "ok" (tokenizers 0.23.3 did).  Run:
    python3 validation/reference/check_tokenizer_options.py
"""
import json

from tokenizers import Tokenizer

MS = "\u2581"


def bpe(vocab, merges=(), added=(), normalizer=None, pre=None, post=None, decoder=None, **model):
    m = {"type": "BPE", "vocab": vocab, "merges": list(merges)}
    m.update(model)
    full = []
    for a in added:
        d = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
             "special": False}
        d.update(a)
        full.append(d)
    return Tokenizer.from_str(json.dumps({
        "version": "1.0", "added_tokens": full, "normalizer": normalizer, "pre_tokenizer": pre,
        "post_processor": post, "decoder": decoder, "model": m}))


def ids(t, text, special=False):
    return t.encode(text, add_special_tokens=special).ids


# Added token options.
t = bpe({c: i for i, c in enumerate("abcxyq -_")} | {"<unk>": 9}, unk_token="<unk>",
        added=[{"id": 10, "content": "<L>", "lstrip": True},
               {"id": 11, "content": "<R>", "rstrip": True},
               {"id": 12, "content": "xy", "single_word": True},
               {"id": 13, "content": "xx", "normalized": True}],
        normalizer={"type": "Replace", "pattern": {"String": "q"}, "content": "x"})
assert ids(t, "a  <L>b") == [0, 10, 1]
assert ids(t, "a<R>  b") == [0, 11, 1]
assert ids(t, "a <L> <R> b") == [0, 10, 6, 11, 1]
assert ids(t, "xy axy xyb  xy") == [12, 6, 0, 3, 4, 6, 3, 4, 1, 6, 6, 12]
assert ids(t, "a xy-b") == [0, 6, 12, 7, 1]
assert ids(t, "aqqb") == [0, 13, 1]
assert ids(t, "xx") == [13]

# Split behaviours: ids of "a--b" and "-a-".
split_cases = {
    ("Removed", False): ([0, 1], [0]), ("Removed", True): ([2, 2], [2, 2]),
    ("Isolated", False): ([0, 2, 2, 1], [2, 0, 2]), ("Isolated", True): ([0, 2, 2, 1], [2, 0, 2]),
    ("MergedWithPrevious", False): ([4, 2, 1], [2, 4]),
    ("MergedWithPrevious", True): ([0, 2, 5], [2, 0, 2]),
    ("MergedWithNext", False): ([0, 2, 5], [2, 0, 2]),
    ("MergedWithNext", True): ([4, 2, 1], [2, 4]),
    ("Contiguous", False): ([0, 3, 1], [2, 0, 2]), ("Contiguous", True): ([0, 3, 1], [2, 0, 2]),
}
for (behavior, invert), (a, b) in split_cases.items():
    for kind in ("String", "Regex"):
        t = bpe({"a": 0, "b": 1, "-": 2, "--": 3, "a-": 4, "-b": 5}, ["- -", "a -", "- b"],
                pre={"type": "Split", "pattern": {kind: "-"}, "behavior": behavior,
                     "invert": invert})
        assert ids(t, "a--b") == a and ids(t, "-a-") == b, (behavior, invert, kind)

# A template ending with </s>; Fuse + Strip("x", 1, 2).
t = bpe({"a": 0, "b": 1, "x": 2, "</s>": 3, "<|endoftext|>": 4},
        added=[{"id": 3, "content": "</s>", "special": True},
               {"id": 4, "content": "<|endoftext|>", "special": False}],
        post={"type": "TemplateProcessing",
              "single": [{"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "</s>", "type_id": 0}}],
              "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                       {"Sequence": {"id": "B", "type_id": 1}}],
              "special_tokens": {"</s>": {"id": "</s>", "ids": [3], "tokens": ["</s>"]}}},
        decoder={"type": "Sequence", "decoders": [
            {"type": "Fuse"}, {"type": "Strip", "content": "x", "start": 1, "stop": 2}]})
assert ids(t, "ab", True) == [0, 1, 3] and ids(t, "ab") == [0, 1]
for seq, text in [([2, 2, 0, 2, 2, 2], "xax"), ([2, 2, 2, 2], "x"), ([2, 0, 1, 2], "ab"),
                  ([0, 2, 2], "a"), ([0, 1], "ab")]:
    assert t.decode(seq) == text, (seq, t.decode(seq))

# Prepend after a Replace that empties the text.
t = bpe({"a": 0, MS: 1, "x": 2, "<s>": 3}, added=[{"id": 3, "content": "<s>", "special": True}],
        normalizer={"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"String": "x"}, "content": ""},
            {"type": "Prepend", "prepend": MS}]})
assert ids(t, "x") == [] and ids(t, "xax") == [1, 0]
assert ids(t, "x<s>x") == [3] and ids(t, "<s>xx<s>a") == [3, 3, 1, 0]

# Byte-level BPE with unk_token, fused or not.
for fuse, want in [(True, ([0, 2, 1], [2, 0])), (False, ([0, 2, 2, 2, 2, 1], [2, 2, 2, 0]))]:
    t = bpe({"a": 0, "b": 1, "<unk>": 2}, unk_token="<unk>", fuse_unk=fuse,
            pre={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False})
    assert (ids(t, "a\u00e9\u00e9b"), ids(t, "zz a")) == want, fuse

# Metaspace's prepend schemes around an added token.
meta = {"first": [[5, 1, 4], [5, 6], [1, 3], [5, 1, 6]],
        "always": [[5, 1, 6], [5, 6], [1, 5], [5, 1, 6]],
        "never": [[3, 1, 4], [3, 6], [1, 3], [5, 1, 6]]}
for scheme, want in meta.items():
    t = bpe({"<unk>": 0, "<s>": 1, MS: 2, "a": 3, "b": 4, MS + "a": 5, MS + "b": 6},
            [MS + " a", MS + " b"], unk_token="<unk>",
            added=[{"id": 1, "content": "<s>", "special": True}],
            pre={"type": "Metaspace", "replacement": MS, "prepend_scheme": scheme,
                 "split": False})
    got = [ids(t, x) for x in ["a<s>b", "a b", "<s>a", " a<s> b"]]
    assert got == want, (scheme, got)
print("ok")
