#!/usr/bin/env python3
"""Writes the golden files the C reference test (validation/unit/test_reference.c)
compares against: a tiny random transformers LlamaForCausalLM with grouped-query
attention, its weights (Hugging Face folder: model.safetensors + config.json),
input batches, logits, loss, every gradient, and the losses, gradient norms and
final weights of 10 AdamW steps with linear warm-up and cosine decay and
gradient clipping.

Run once (PyTorch, transformers, safetensors from PyPI); make test never needs Python:
    python3 validation/reference/make_llama_golden.py validation/golden/llama-tiny
    python3 validation/reference/make_llama_golden.py validation/golden/llama-tiny-tied --tied
    python3 validation/reference/make_llama_golden.py validation/golden/llama-tiny-wsd --wsd
--tied: tie_word_embeddings=True (one tensor is the embedding and the LM head,
its gradient the sum of both uses), vocab 99, FFN 72, 4 layers, seed 2 (seed
1's model has v_proj gradients near zero in layer 2, which Adam turns into
8e-5 weight differences between tp2 and one rank, tied or not).
--wsd: the untied model trained with other optimizer settings (betas 0.8/0.99, eps
1e-6, a warm-up-stable-decay schedule ending before the last step: Megatron-LM's
--lr-decay-style WSD with a linear final decay, --lr-decay-iters 9,
--lr-wsd-decay-iters 4), for llama-train's --adam-* and --lr-decay-* options.
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
TIED = "--tied" in sys.argv[1:]
WSD = "--wsd" in sys.argv[1:]
OUT = ARGS[0] if ARGS else "validation/golden/llama-tiny"
B, T, STEPS = 2, 11, 10
OPT = dict(lr=3e-3, warmup=3, min_lr_ratio=0.1, weight_decay=0.1, clip=1.0,
           betas=(0.9, 0.95), eps=1e-8)
if WSD:
    OPT.update(lr=2e-3, warmup=2, min_lr_ratio=0.2, betas=(0.8, 0.99), eps=1e-6,
               lr_decay_style="wsd", lr_decay_steps=9, lr_wsd_decay_steps=4)

torch.manual_seed(2 if TIED else 0)
torch.set_default_dtype(torch.float32)
torch.use_deterministic_algorithms(True)

config = LlamaConfig(vocab_size=99 if TIED else 97, hidden_size=48,
                     intermediate_size=72 if TIED else 80,
                     num_hidden_layers=4 if TIED else 2, num_attention_heads=6, num_key_value_heads=2,
                     max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5,
                     tie_word_embeddings=TIED, attention_bias=False, mlp_bias=False,
                     bos_token_id=None, eos_token_id=None, pad_token_id=None)
config._attn_implementation = "eager"
model = LlamaForCausalLM(config).float()
assert (model.lm_head.weight is model.model.embed_tokens.weight) == TIED
# Norm weights away from 1 so their gradients are exercised.
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.copy_(1.0 + 0.1 * torch.randn_like(p))
os.makedirs(OUT, exist_ok=True)
model.save_pretrained(OUT, safe_serialization=True)

batches = torch.randint(0, config.vocab_size, (STEPS, B, T + 1), dtype=torch.int64)


def loss_of(batch):
    logits = model(input_ids=batch[:, :T]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size),
                                             batch[:, 1:].reshape(-1))
    return logits, loss


golden = {"tokens": batches.float().contiguous()}
logits, loss = loss_of(batches[0])
loss.backward()
golden["logits"] = logits.detach().reshape(B * T, -1).contiguous()
golden["loss"] = loss.detach().reshape(1)
for name, p in model.named_parameters():
    golden["grad." + name] = p.grad.detach().clone().contiguous()
model.zero_grad(set_to_none=True)


def lr_lambda(step):  # the learning rate of step `step` (from 0), as a multiple of lr
    if step < OPT["warmup"]:
        return (step + 1) / OPT["warmup"]
    end = OPT.get("lr_decay_steps", STEPS)  # where the decay reaches min_lr_ratio
    style = OPT.get("lr_decay_style", "cosine")
    start = end - OPT["lr_wsd_decay_steps"] if style == "wsd" else OPT["warmup"]
    progress = min(1.0, max(0.0, (step - start) / max(1, end - start)))
    left = 0.5 * (1 + math.cos(math.pi * progress)) if style == "cosine" else 1 - progress
    return OPT["min_lr_ratio"] + (1 - OPT["min_lr_ratio"]) * left


decay = [p for p in model.parameters() if p.dim() == 2]
no_decay = [p for p in model.parameters() if p.dim() == 1]
optim = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=OPT["lr"], betas=OPT["betas"], eps=OPT["eps"], foreach=False)
sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
losses, norms = [], []
for step in range(STEPS):
    _, loss = loss_of(batches[step])
    loss.backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["clip"])))
    optim.step()
    sched.step()
    optim.zero_grad(set_to_none=True)
    losses.append(float(loss))
golden["step_losses"] = torch.tensor(losses, dtype=torch.float32)
golden["step_grad_norms"] = torch.tensor(norms, dtype=torch.float32)
for name, p in model.named_parameters():  # the weights after the last update
    golden["final." + name] = p.detach().clone().contiguous()
save_file(golden, os.path.join(OUT, "golden.safetensors"))
with open(os.path.join(OUT, "golden.json"), "w") as f:
    json.dump({"B": B, "T": T, "steps": STEPS, **OPT, "losses": losses,
               "n_params": sum(p.numel() for p in model.parameters()),
               "torch": torch.__version__}, f, indent=1)
print("wrote", OUT, "losses", ["%.6f" % l for l in losses])
