#!/usr/bin/env python3
"""The PyTorch-eager baseline for llama-train --bench on a GPU: transformers'
LlamaForCausalLM of the same shape, fp32 weights with bf16 autocast (what
llama-train -x bf16 keeps: fp32 master weights and Adam moments, bf16
compute), SDPA attention, forward + backward + clipping + AdamW (fused) on
random tokens; warm-up steps excluded.  Prints tokens/s, model TFLOP/s by
llama-train's convention (6N + 12·layers·dim·seq per token, N = non-embedding
parameters + LM head) and the peak memory, then one machine-readable JSON line:
    python3 jobs/bench/torch_eager_gpu.py --preset 1b -b 8 -l 2048
--compile runs the model under torch.compile (default mode; the warm-up steps
include the compilation, the first step's time is reported).  --profile FILE
runs one more step after the timed ones under torch.profiler (CUDA activity
only) and writes each kernel's name, launch count and total device time to
FILE as JSON (read by jobs/bench/profile_summary.py), with the Chrome trace
beside it (FILE less its extension + .trace.json).  --device cpu exists only
to test this script on a machine without a GPU (the tiny preset)."""
import argparse
import json
import os
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {  # the shapes of src/core/config.c
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


def kernel_rows(events, device_type):
    """[{name, count, total_us}] of torch.profiler's events on device_type
    (DeviceType.CUDA: kernels, memcpy, memset), largest total first."""
    agg = {}
    for e in events:
        if getattr(e, "device_type", None) != device_type:
            continue
        tr = getattr(e, "time_range", None)
        us = tr.elapsed_us() if tr is not None else getattr(e, "device_time_total", 0.0)
        c = agg.setdefault(e.name, [0, 0.0])
        c[0] += 1
        c[1] += float(us)
    return [{"name": n, "count": c, "total_us": us}
            for n, (c, us) in sorted(agg.items(), key=lambda kv: (-kv[1][1], kv[0]))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="1b")
    p.add_argument("-b", type=int, default=8)
    p.add_argument("-l", type=int, default=2048)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--profile", metavar="FILE",
                   help="one more step under torch.profiler: each kernel's time to FILE (JSON)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cpu: only to test this script without a GPU")
    a = p.parse_args()
    if a.steps <= a.warmup:
        p.error("--steps must exceed --warmup")
    cuda = a.device == "cuda"
    torch.manual_seed(0)
    dev = torch.device(a.device)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    shape = PRESETS[a.preset]
    cfg = LlamaConfig(**shape, max_position_embeddings=max(a.l, 2048), rms_norm_eps=1e-5,
                      tie_word_embeddings=False, use_cache=False)
    cfg._attn_implementation = a.attn
    with torch.device(dev):   # initialised on the GPU: seconds, not a minute on the CPU
        model = LlamaForCausalLM(cfg).float()
    if a.grad_checkpoint:
        model.gradient_checkpointing_enable()
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    if a.compile:
        model = torch.compile(model)
    tokens = torch.randint(0, cfg.vocab_size, (a.b, a.l + 1), device=dev)

    def train_step():
        with torch.autocast(a.device, dtype=torch.bfloat16):
            logits = model(input_ids=tokens[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size),
                                                 tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    elapsed = first = 0.0
    for step in range(a.steps):
        sync()
        t0 = time.perf_counter()
        loss = train_step()
        sync()
        dt = time.perf_counter() - t0
        if step == 0:
            first = dt
        if step >= a.warmup:
            elapsed += dt
        print(f"step {step + 1}: loss {loss.item():.4f}, {a.b * a.l / dt:.0f} tokens/s, {dt:.2f} s",
              flush=True)
    tps = a.b * a.l * (a.steps - a.warmup) / elapsed
    tflops = tps * flops_per_token(shape, a.l) / 1e12
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    mode = "torch.compile" if a.compile else "eager"
    print(f"torch {torch.__version__} {mode} ({a.attn}, bf16 autocast, fused AdamW"
          f"{', checkpointing' if a.grad_checkpoint else ''}) on {device_name}, "
          f"{a.preset} b{a.b} l{a.l}: {tps:.0f} tokens/s, {tflops:.1f} model TFLOP/s, "
          f"peak {peak:.1f} GiB{f', first step (compilation) {first:.1f} s' if a.compile else ''}",
          flush=True)
    print(json.dumps({"torch_tokens_per_s": tps, "torch_tflops": tflops, "torch_peak_gib": peak,
                      "torch_compile": a.compile, "first_step_s": first}), flush=True)
    if not a.profile:
        return

    # One more step under torch.profiler: the device's activity only.
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    activity, device_type = ((ProfilerActivity.CUDA, DeviceType.CUDA) if cuda
                             else (ProfilerActivity.CPU, DeviceType.CPU))
    sync()
    with profile(activities=[activity]) as prof:
        t0 = time.perf_counter()
        train_step()
        sync()
        pdt = time.perf_counter() - t0
    rows = kernel_rows(prof.events(), device_type)
    trace = os.path.splitext(a.profile)[0] + ".trace.json"
    try:
        prof.export_chrome_trace(trace)
    except Exception as e:  # noqa: BLE001 (the JSON is what counts; the trace is a closer look)
        print(f"profile: no Chrome trace ({e})", flush=True)
        trace = None
    how = "torch.profiler's events"
    if not rows and trace and cuda:   # read the trace's kernel events instead
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import profile_summary
        with open(trace) as f:
            k = profile_summary.read_chrome_trace(json.load(f))
        rows = [{"name": n, "count": c, "total_us": ms * 1e3}
                for n, (c, ms) in sorted(k.items(), key=lambda kv: -kv[1][1])]
        how = "the Chrome trace"
    total_ms = sum(r["total_us"] for r in rows) / 1e3
    with open(a.profile, "w") as f:
        json.dump({"source": "torch", "torch": torch.__version__, "device": device_name,
                   "preset": a.preset, "b": a.b, "l": a.l, "compile": a.compile,
                   "step_ms": 1e3 * elapsed / (a.steps - a.warmup), "profiled_step_ms": 1e3 * pdt,
                   "kernels_from": how, "trace": trace, "kernels": rows}, f, indent=1)
    print(f"profile: {sum(r['count'] for r in rows)} kernel launches, {len(rows)} distinct, "
          f"{total_ms:.1f} ms of kernel time in a {1e3 * pdt:.1f} ms profiled step (from {how}) "
          f"-> {a.profile}", flush=True)


if __name__ == "__main__":
    main()
