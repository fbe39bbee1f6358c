#!/usr/bin/env python3
"""The transformers side of the Hugging Face round trip (run by
make_hf_roundtrip_golden.sh, once; make test never needs Python):

  hf_roundtrip_reference.py init DIR
      a random LlamaForCausalLM of the tiny preset's shape (fp32, untied) whose
      every tensor matters: matrices of std 0.1 (attention far from uniform, so
      a q/k row permutation changes the logits), norm weights 1 ± 0.3 (a norm
      exported as ones changes them too); saved as a Hugging Face folder, the
      start of the 8-rank training (--init-hf DIR).
  hf_roundtrip_reference.py logits DIR
      loads the folder llama-hpc exported in transformers (fp32, eager
      attention) and writes, beside it, the logits of every position of a
      seeded held-out batch (logits.safetensors: "logits" (B·T, V) fp32) and
      golden.json (B, T, the tokens, the loss, torch's version).
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

B, T = 3, 48


def init(folder):
    torch.manual_seed(31)
    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=192,
                         num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(config).float()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.3 * (2 * torch.rand_like(p) - 1))
            else:
                p.normal_(0.0, 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    print("wrote", folder)


def logits(folder):
    torch.manual_seed(2024)
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == bool(model.config.tie_word_embeddings), "transformers did not tie it"
    print("tied embeddings" if tied else "untied")
    tokens = torch.randint(0, model.config.vocab_size, (B, T + 1))
    with torch.no_grad():
        out = model(input_ids=tokens[:, :T]).logits
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                                 tokens[:, 1:].reshape(-1))
    save_file({"logits": out.reshape(B * T, -1).contiguous()}, f"{folder}/logits.safetensors")
    with open(f"{folder}/golden.json", "w") as f:
        json.dump({"B": B, "T": T, "tokens": tokens.tolist(), "loss": float(loss), "tied": tied,
                   "torch": torch.__version__}, f)
    print("held-out loss", float(loss))


{"init": init, "logits": logits}[sys.argv[1]](sys.argv[2])
