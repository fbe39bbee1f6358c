#!/usr/bin/env python3
"""Goldens for RoPE scaling (run once by hand; make test never needs Python):

  make_rope_scaling_golden.py [BUILD]

writes validation/golden/rope-llama3 and validation/golden/rope-linear, each a
small random LlamaForCausalLM made by transformers (fp32, GQA, 3 heads of 32
dimensions, odd FFN and vocabulary) with RoPE scaling, in the layout of
validation/golden/hf-roundtrip: config.json + model.safetensors, and the
logits transformers computes (eager attention) at every position of a seeded
batch of 48 tokens (logits.safetensors: "logits" (B·T, V) fp32; golden.json:
B, T, the tokens, the loss, the versions).  The logits come from loading the
folder as written, so they are what its config.json means to transformers.

  rope-llama3: rope_type llama3, factor 4, low_freq_factor 1, high_freq_factor
      4, original_max_position_embeddings 32, max_position_embeddings 64: of a
      head's 16 frequencies the first is kept (wavelength 6.3 < 32/4), the next
      two blended, the rest divided by 4; positions 32..47 lie beyond the
      original context.  Saved as transformers 5 writes it (rope_parameters).
  rope-linear: rope_type linear, factor 2.5, rope_theta 500000, written the
      transformers 4 way (top-level rope_theta, rope_scaling with "type").

validation/unit/test_hf_roundtrip.c imports each and compares the logits.

With BUILD (a build folder holding llama-ckpt), also checks once that what
llama-hpc exports reloads in transformers as the same model: import-hf, then
export-hf, then the export's logits in transformers against the golden's
(and its rope_parameters against the original's).
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
B, T = 2, 48
SHAPE = dict(vocab_size=101, hidden_size=96, intermediate_size=80, num_hidden_layers=2,
             num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=64,
             rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
             bos_token_id=None, eos_token_id=None, pad_token_id=None)
CASES = {
    "rope-llama3": dict(rope_theta=10000.0, seed=41,
                        rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 32}),
    "rope-linear": dict(rope_theta=500000.0, seed=43,
                        rope_scaling={"type": "linear", "factor": 2.5}),
}


def make_model(folder, case):
    """A random model whose every tensor matters (as hf_roundtrip_reference.py)."""
    torch.manual_seed(case["seed"])
    config = LlamaConfig(**SHAPE, rope_theta=case["rope_theta"],
                         rope_scaling=dict(case["rope_scaling"]))
    model = LlamaForCausalLM(config).float()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.3 * (2 * torch.rand_like(p) - 1))
            else:
                p.normal_(0.0, 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    if "type" in case["rope_scaling"]:   # rewrite the transformers 4 way
        path = os.path.join(folder, "config.json")
        with open(path) as f:
            c = json.load(f)
        c.pop("rope_parameters", None)
        c["rope_theta"] = case["rope_theta"]
        c["rope_scaling"] = case["rope_scaling"]
        with open(path, "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)


def logits_of(folder, tokens):
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=tokens[:, :T]).logits
    return model, out


def write_golden(folder, case):
    torch.manual_seed(case["seed"] + 1000)
    tokens = torch.randint(0, SHAPE["vocab_size"], (B, T + 1))
    model, out = logits_of(folder, tokens)
    assert model.config.rope_parameters["rope_type"] == case["rope_scaling"].get(
        "rope_type", case["rope_scaling"].get("type")), model.config.rope_parameters
    loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                             tokens[:, 1:].reshape(-1))
    save_file({"logits": out.reshape(B * T, -1).contiguous()}, f"{folder}/logits.safetensors")
    with open(f"{folder}/golden.json", "w") as f:
        json.dump({"B": B, "T": T, "tokens": tokens.tolist(), "loss": float(loss),
                   "torch": torch.__version__, "transformers": transformers.__version__}, f)
    print(folder, "loss", float(loss), "rope", dict(model.config.rope_parameters))
    return tokens, out, model.config.rope_parameters


def check_export(build, folder, tokens, want, rope):
    """llama-ckpt import-hf + export-hf of the golden reloads in transformers alike."""
    ckpt = os.path.join(build, "llama-ckpt")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([ckpt, "import-hf", folder, f"{tmp}/ck"], check=True)
        subprocess.run([ckpt, "export-hf", f"{tmp}/ck/step_0000000", f"{tmp}/export"], check=True)
        model, got = logits_of(f"{tmp}/export", tokens)
        keys = ("rope_type", "rope_theta", "factor", "low_freq_factor", "high_freq_factor",
                "original_max_position_embeddings")
        a = {k: rope.get(k) for k in keys}
        b = {k: model.config.rope_parameters.get(k) for k in keys}
        assert a == b, f"the export's rope_parameters {b} differ from {a}"
        rel = float(((got - want).abs().amax(-1) / want.abs().amax(-1)).max())
        assert rel <= 1e-5, f"the export's logits differ by {rel:.3g} of the row's largest"
        print(f"  llama-ckpt export reloads in transformers: same RoPE, logits within {rel:.2g}")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else None
    for name, case in CASES.items():
        folder = os.path.join(ROOT, "validation", "golden", name)
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.remove(os.path.join(folder, f))
        make_model(folder, case)
        tokens, out, rope = write_golden(folder, case)
        if build:
            check_export(build, folder, tokens, out, rope)


main()
