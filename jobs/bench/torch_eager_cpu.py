#!/usr/bin/env python3
"""The PyTorch-eager baseline for llama-train --bench on the CPU: transformers'
LlamaForCausalLM of the same shape, fp32, same threads, forward + backward +
AdamW on random tokens; prints tokens/s (warm-up steps excluded).
    OMP_NUM_THREADS=2 python3 jobs/bench/torch_eager_cpu.py --preset small -b 8 -l 256"""
import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {  # the shapes of src/core/config.c
    "tiny": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                 intermediate_size=192, vocab_size=256),
    "small": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                  intermediate_size=1024, vocab_size=8192),
}
p = argparse.ArgumentParser()
p.add_argument("--preset", default="small")
p.add_argument("-b", type=int, default=8)
p.add_argument("-l", type=int, default=256)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
a = p.parse_args()
torch.manual_seed(0)
cfg = LlamaConfig(**PRESETS[a.preset], max_position_embeddings=max(a.l, 512), rms_norm_eps=1e-5,
                  tie_word_embeddings=False)
cfg._attn_implementation = a.attn
model = LlamaForCausalLM(cfg).float()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
tokens = torch.randint(0, cfg.vocab_size, (a.b, a.l + 1))
elapsed = 0.0
for step in range(a.steps):
    t0 = time.perf_counter()
    logits = model(input_ids=tokens[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), tokens[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    if step >= a.warmup:
        elapsed += dt
    print(f"step {step + 1}: loss {loss.item():.4f}, {a.b * a.l / dt:.1f} tokens/s")
print(f"torch {torch.__version__} eager ({a.attn} attention), {torch.get_num_threads()} threads, "
      f"{a.preset} b{a.b} l{a.l}: {a.b * a.l * (a.steps - a.warmup) / elapsed:.1f} tokens/s")
