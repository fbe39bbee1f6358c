#!/usr/bin/env python3
"""The PyTorch-eager baseline for llama-train --bench on a GPU: transformers'
LlamaForCausalLM of the same shape, fp32 weights with bf16 autocast (what
llama-train -x bf16 keeps: fp32 master weights and Adam moments, bf16
compute), SDPA attention, forward + backward + clipping + AdamW (fused) on
random tokens; warm-up steps excluded.  Prints tokens/s, model TFLOP/s by
llama-train's convention (6N + 12·layers·dim·seq per token, N = non-embedding
parameters + LM head) and the peak memory, last line machine-readable:
    python3 jobs/bench/torch_eager_gpu.py --preset 1b -b 8 -l 2048"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {  # the shapes of src/config.c
    "tiny": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                 intermediate_size=192, vocab_size=256),
    "small": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                  intermediate_size=1024, vocab_size=8192),
    "1b": dict(hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
               intermediate_size=5632, vocab_size=32000),
}


def flops_per_token(c, seq):
    d, L, F, V = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * d // c["num_attention_heads"]
    per_layer = 2 * d + 2 * d * d + 2 * d * kv + 3 * d * F
    n = L * per_layer + d + V * d  # non-embedding + LM head
    return 6.0 * n + 12.0 * L * d * seq


p = argparse.ArgumentParser()
p.add_argument("--preset", default="1b")
p.add_argument("-b", type=int, default=8)
p.add_argument("-l", type=int, default=2048)
p.add_argument("--steps", type=int, default=8)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
p.add_argument("--grad-checkpoint", action="store_true")
a = p.parse_args()
torch.manual_seed(0)
dev = torch.device("cuda")
shape = PRESETS[a.preset]
cfg = LlamaConfig(**shape, max_position_embeddings=max(a.l, 2048), rms_norm_eps=1e-5,
                  tie_word_embeddings=False)
cfg._attn_implementation = a.attn
with torch.device(dev):   # initialised on the GPU: seconds, not a minute on the CPU
    model = LlamaForCausalLM(cfg).float()
if a.grad_checkpoint:
    model.gradient_checkpointing_enable()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                        fused=True)
tokens = torch.randint(0, cfg.vocab_size, (a.b, a.l + 1), device=dev)
torch.cuda.reset_peak_memory_stats()
elapsed = 0.0
for step in range(a.steps):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(input_ids=tokens[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size),
                                             tokens[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if step >= a.warmup:
        elapsed += dt
    print(f"step {step + 1}: loss {loss.item():.4f}, {a.b * a.l / dt:.0f} tokens/s", flush=True)
tps = a.b * a.l * (a.steps - a.warmup) / elapsed
tflops = tps * flops_per_token(shape, a.l) / 1e12
peak = torch.cuda.max_memory_allocated() / 2**30
print(f"torch {torch.__version__} eager ({a.attn}, bf16 autocast, fused AdamW"
      f"{', checkpointing' if a.grad_checkpoint else ''}) on {torch.cuda.get_device_name()}, "
      f"{a.preset} b{a.b} l{a.l}: {tps:.0f} tokens/s, {tflops:.1f} model TFLOP/s, peak {peak:.1f} GiB")
print(json.dumps({"torch_tokens_per_s": tps, "torch_tflops": tflops, "torch_peak_gib": peak}))
