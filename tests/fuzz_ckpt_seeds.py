#!/usr/bin/python3
"""fuzz_ckpt_seeds.py DIR - small torch.save checkpoints as seeds for
tests/fuzz_ckpt.c (`make fuzz-ckpt`): the published wrapper dict, a bare
state dict, fp16 and bf16 tensors, a shared storage (tied weights), a
strided view, a 0-dim tensor that requires grad, and opaque extras.  Each is
a few KB so that libFuzzer can mutate it."""
import collections
import os
import sys

import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
g = torch.Generator().manual_seed(1)
emb = torch.randn(8, 4, generator=g)
sd = collections.OrderedDict([
    ("tok_emb.weight", emb), ("pos_emb.weight", torch.randn(6, 4, generator=g)),
    ("out_head.weight", emb), ("trf_blocks.0.att.mask", torch.triu(torch.ones(3, 3), 1)),
    ("trf_blocks.0.norm1.scale", torch.ones(4)), ("final_norm.shift", torch.zeros(4)),
    ("vision.resampler.latents", torch.randn(2, 4, generator=g))])
cases = {
    "wrapper": {"model_state_dict": sd, "config": {"emb_dim": 4, "context_length": 3}, "epoch": 9,
                "loss": torch.tensor(2.5, requires_grad=True) * 1.0, "model_class": "GPTModal"},
    "bare": sd,
    "fp16": collections.OrderedDict((k, v.half()) for k, v in sd.items()),
    "bf16": collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()),
    "strided": {"model_state_dict": {"tok_emb.weight": emb.t(), "pos_emb.weight": emb[::2]}},
    "extras": {"model_state_dict": sd, "step": np.int64(3), "lr": np.float32(1e-4),
               "opt": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}},
}
for name, obj in cases.items():
    torch.save(obj, os.path.join(out, name + ".pth"))
print(f"fuzz_ckpt_seeds: {len(cases)} seeds in {out}")
