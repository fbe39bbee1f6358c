#!/usr/bin/env python3
"""Loads a Hugging Face folder exported by llama-hpc in transformers'
LlamaForCausalLM (fp32, eager attention) and writes the loss of a seeded
held-out batch: golden.json beside the weights.  Run by
make_hf_roundtrip_golden.sh; make test never needs Python."""
import json
import sys

import torch
from transformers import LlamaForCausalLM

folder = sys.argv[1]
B, T = 3, 48
torch.manual_seed(2024)
model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32,
                                         attn_implementation="eager").eval()
tokens = torch.randint(0, model.config.vocab_size, (B, T + 1))
with torch.no_grad():
    logits = model(input_ids=tokens[:, :T]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             tokens[:, 1:].reshape(-1))
json.dump({"B": B, "T": T, "tokens": tokens.tolist(), "loss": float(loss),
           "torch": torch.__version__}, open(f"{folder}/golden.json", "w"))
print("held-out loss", float(loss))
