#!/usr/bin/env python3
"""hf_ref.py - an independent PyTorch implementation of Hugging Face's
VisionEncoderDecoderModel(ViT, GPT-2) (nlpconnect/vit-gpt2-image-captioning),
written from the transformers model definitions' semantics (nothing copied;
transformers is not installable here), and the random-weight hub folders the
C engine is tested on.

  mkfix --out DIR --preset tiny|full --layout safetensors|bin|legacy
        [--dtype fp32|fp16|bf16] [--eos-bias X] [--project] [--no-gen-config]
      a hub folder: config.json (VisionEncoderDecoderConfig with the hub's
      field names), preprocessor_config.json, [generation_config.json],
      vocab.json, merges.txt, tokenizer.json, and the weights as
      model.safetensors (lm_head absent), pytorch_model.bin (torch zip, mask
      buffers attn.bias / attn.masked_bias kept, lm_head tied) or the legacy
      pre-1.6 torch.save stream.
  run --model DIR --out RUN [--n-images N | --images F...] --steps K [--beams 4]
      float64: encoder states (N,197,C), teacher-forced greedy logits, greedy
      tokens and top-2 margins, and beam search as transformers' generate()
      runs it (num_beams, max_length, length_penalty, early_stopping).
  check --dir RUN
      the fixture is not degenerate.
  bench --model DIR [--dtype fp32|bf16] [--threads 2] [--tokens 15]
      PyTorch's stream of captions (encode + greedy with a KV cache), for
      `make bench` (tools/bench_hf.sh).

The math (float64):
  ViT: patches by a stride-P conv, class token first, position embeddings,
  pre-LN layers (layernorm_before, attention, residual, layernorm_after,
  GELU(erf) MLP, residual), final layernorm; eps from the config.  All
  1+G*G tokens are the encoder states (the pooler is not used).
  GPT-2: wte[tok] + wpe[pos]; per block: ln_1, causal self-attention
  (Conv1D c_attn: x @ W + b, [in,out]), residual, ln_cross_attn,
  cross-attention (q = q_attn(x); k, v = c_attn(encoder states) split in
  two), residual, ln_2, MLP with tanh GELU (gelu_new), residual; ln_f;
  logits = h @ wte^T (tied lm_head).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
from ref_math import attention, gelu_erf, layer_norm
from ref_math import gelu_tanh as gelu_new

EOT = 50256

PRESETS = {
    "tiny": dict(vit=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
                 gpt=dict(n_embd=64, n_layer=2, n_head=4, n_positions=64)),
    "full": dict(vit=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
                 gpt=dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024)),
}

# Init gains (Linear weights ~ N(0, (gain/sqrt(fan_in))^2)), tuned so that
# random models caption non-degenerately: transformers' own init (std 0.02
# everywhere, LN = 1/0) makes GPT-2 echo one token forever.
INIT = dict(wte=0.02, wpe=0.05, ln_w=0.1, ln_b=0.02, bias=0.02, lin=1.5, qk=2.0, cls=0.1, vpos=0.1,
            conv=1.0, vit_out=0.5, cross_kv=1.5, cross_out=2.5, b0_out=6.0, b_out=0.5, logit_std=4.0)


# ------------------------------------------------------------- the config

def hub_config(preset, project):
    p = PRESETS[preset]
    vit = dict(p["vit"])
    if project:
        vit.update(hidden_size=48, num_attention_heads=3, intermediate_size=96)
    enc = {"_name_or_path": "", "architectures": ["ViTModel"], "attention_probs_dropout_prob": 0.0,
           "encoder_stride": 16, "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "image_size": 224,
           "initializer_range": 0.02, "layer_norm_eps": 1e-12, "model_type": "vit", "num_channels": 3,
           "patch_size": 16, "qkv_bias": True, **vit}
    dec = {"_name_or_path": "gpt2", "activation_function": "gelu_new", "add_cross_attention": True,
           "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": EOT, "embd_pdrop": 0.1,
           "eos_token_id": EOT, "decoder_start_token_id": EOT, "initializer_range": 0.02, "is_decoder": True,
           "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_inner": None,
           "pad_token_id": EOT, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
           "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True, "summary_activation": None,
           "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
           "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
           "use_cache": True, "vocab_size": 50257, **p["gpt"]}
    return {"_name_or_path": "", "architectures": ["VisionEncoderDecoderModel"], "bos_token_id": EOT,
            "decoder": dec, "decoder_start_token_id": EOT, "encoder": enc, "eos_token_id": EOT,
            "is_encoder_decoder": True, "model_type": "vision-encoder-decoder", "pad_token_id": EOT,
            "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.36.2"}


PREPROCESSOR = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
                "image_processor_type": "ViTImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 2,
                "rescale_factor": 0.00392156862745098, "size": {"height": 224, "width": 224}}
GENERATION = {"_from_model_config": True, "bos_token_id": EOT, "decoder_start_token_id": EOT,
              "eos_token_id": EOT, "pad_token_id": EOT, "max_length": 16, "num_beams": 4,
              "transformers_version": "4.36.2"}


def read_config(d):
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    gen = dict(num_beams=4, max_length=16, length_penalty=1.0, early_stopping=False)
    for k in gen:
        if k in conf:
            gen[k] = conf[k]
    gp = os.path.join(d, "generation_config.json")
    if os.path.exists(gp):
        with open(gp) as f:
            g = json.load(f)
        for k in gen:
            if k in g:
                gen[k] = g[k]
    pre = dict(PREPROCESSOR)
    pp = os.path.join(d, "preprocessor_config.json")
    if os.path.exists(pp):
        with open(pp) as f:
            pre.update(json.load(f))
    return conf, gen, pre


# -------------------------------------------------------------- weights

def param_shapes(conf):
    e, g = conf["encoder"], conf["decoder"]
    D, P, L = e["hidden_size"], e["patch_size"], e["num_hidden_layers"]
    T = 1 + (e["image_size"] // P) ** 2
    C, F = g["n_embd"], g["n_inner"] or 4 * g["n_embd"]
    sh = OrderedDict()
    sh["encoder.embeddings.cls_token"] = (1, 1, D)
    sh["encoder.embeddings.position_embeddings"] = (1, T, D)
    sh["encoder.embeddings.patch_embeddings.projection.weight"] = (D, 3, P, P)
    sh["encoder.embeddings.patch_embeddings.projection.bias"] = (D,)
    for i in range(L):
        p = f"encoder.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sh[p + f"attention.attention.{n}.weight"] = (D, D)
            sh[p + f"attention.attention.{n}.bias"] = (D,)
        sh[p + "attention.output.dense.weight"] = (D, D)
        sh[p + "attention.output.dense.bias"] = (D,)
        sh[p + "intermediate.dense.weight"] = (e["intermediate_size"], D)
        sh[p + "intermediate.dense.bias"] = (e["intermediate_size"],)
        sh[p + "output.dense.weight"] = (D, e["intermediate_size"])
        sh[p + "output.dense.bias"] = (D,)
        for n in ("layernorm_before", "layernorm_after"):
            sh[p + n + ".weight"] = (D,)
            sh[p + n + ".bias"] = (D,)
    sh["encoder.layernorm.weight"] = (D,)
    sh["encoder.layernorm.bias"] = (D,)
    sh["encoder.pooler.dense.weight"] = (D, D)
    sh["encoder.pooler.dense.bias"] = (D,)
    t = "decoder.transformer."
    sh[t + "wte.weight"] = (g["vocab_size"], C)
    sh[t + "wpe.weight"] = (g["n_positions"], C)
    for i in range(g["n_layer"]):
        p = f"{t}h.{i}."
        # the order transformers' state dict lists them in (ln_2 before crossattention)
        for n, s in (("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (C, 3 * C)),
                     ("attn.c_attn.bias", (3 * C,)), ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                     ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                     ("crossattention.c_attn.weight", (C, 2 * C)), ("crossattention.c_attn.bias", (2 * C,)),
                     ("crossattention.q_attn.weight", (C, C)), ("crossattention.q_attn.bias", (C,)),
                     ("crossattention.c_proj.weight", (C, C)), ("crossattention.c_proj.bias", (C,)),
                     ("ln_cross_attn.weight", (C,)), ("ln_cross_attn.bias", (C,)),
                     ("mlp.c_fc.weight", (C, F)), ("mlp.c_fc.bias", (F,)),
                     ("mlp.c_proj.weight", (F, C)), ("mlp.c_proj.bias", (C,))):
            sh[p + n] = s
    sh[t + "ln_f.weight"] = (C,)
    sh[t + "ln_f.bias"] = (C,)
    if D != C:
        sh["enc_to_dec_proj.weight"] = (C, D)
        sh["enc_to_dec_proj.bias"] = (C,)
    return sh


def _gain(name):
    if ".crossattention.c_attn." in name:
        return INIT["cross_kv"]
    if ".crossattention.c_proj." in name:
        return INIT["cross_out"]
    if name.endswith(("attention.query.weight", "attention.key.weight", "q_attn.weight")):
        return INIT["qk"]
    if ".h.0." in name and name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
        return INIT["b0_out"]
    if ".h." in name and name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
        return INIT["b_out"]
    if ".encoder.layer." in name and name.endswith(("output.dense.weight",)):
        return INIT["vit_out"]
    return INIT["lin"]


def init_params(conf, seed, eos_bias):
    """Everything nonzero (a dropped bias shows up).  The tied head makes
    logits = LN(h)*s . wte: small wte keeps the input token from echoing,
    s sets the logits' spread; a loud first block brings token and position
    in, loud cross-attention the image.  eos_bias pushes ln_f's shift
    along wte[50256], so that captions end (stopping and beam bookkeeping)."""
    g = torch.Generator().manual_seed(seed)
    rn = lambda shape, std: torch.randn(shape, generator=g, dtype=torch.float64) * std
    C = conf["decoder"]["n_embd"]
    sd = OrderedDict()
    for name, shape in param_shapes(conf).items():
        if name.endswith("wte.weight"):
            v = rn(shape, INIT["wte"])
        elif name.endswith("wpe.weight"):
            v = rn(shape, INIT["wpe"])
        elif name.endswith("cls_token"):
            v = rn(shape, INIT["cls"])
        elif name.endswith("position_embeddings"):
            v = rn(shape, INIT["vpos"])
        elif name.endswith("projection.weight"):
            v = rn(shape, INIT["conv"] / math.sqrt(shape[1] * shape[2] * shape[3]))
        elif name.endswith("ln_f.weight"):
            v = INIT["logit_std"] / (INIT["wte"] * math.sqrt(C)) * (1 + rn(shape, INIT["ln_w"]))
        elif len(shape) == 1 and ("ln" in name.rsplit(".", 2)[-2] or "layernorm" in name) and name.endswith(".weight"):
            v = 1 + rn(shape, INIT["ln_w"])
        elif len(shape) == 1:
            v = rn(shape, INIT["ln_b"] if "ln" in name or "layernorm" in name else INIT["bias"])
        elif name.startswith("decoder."):  # Conv1D [in, out]
            v = rn(shape, _gain(name) / math.sqrt(shape[0]))
        else:  # Linear [out, in]
            v = rn(shape, _gain(name) / math.sqrt(shape[1]))
        sd[name] = v
    if eos_bias:
        w = sd["decoder.transformer.wte.weight"][EOT]
        sd["decoder.transformer.ln_f.bias"] += eos_bias * w / w.norm() ** 2
    return sd


# ------------------------------------------------------------- writers

ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, sd):
    """u64 LE header length, JSON header, raw little-endian data (8-aligned)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in sd.items():
        b = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.contiguous().numpy().tobytes()
        header[k] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def torch_state_dict(conf, sd):
    """As GPT2LMHeadModel.state_dict() has it: mask buffers kept, lm_head
    sharing wte's storage."""
    out = OrderedDict()
    P = conf["decoder"]["n_positions"]
    mask = torch.tril(torch.ones((P, P), dtype=torch.uint8)).view(1, 1, P, P)
    for k, v in sd.items():
        out[k] = v
        if k.endswith("attn.c_proj.bias") or k.endswith("crossattention.c_proj.bias"):
            pre = k.rsplit(".c_proj.bias", 1)[0]
            out[pre + ".bias"] = mask.bool() if "crossattention" in k else mask
            out[pre + ".masked_bias"] = torch.tensor(-1e4)
    out["decoder.lm_head.weight"] = out["decoder.transformer.wte.weight"]
    return out


def write_tokenizer(d):
    root = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(root, "..", "..", "data", "encoder.json"), os.path.join(d, "vocab.json"))
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\nĠ t\nĠ a\nh e\ni n\nr e\n")
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [
            {"id": EOT, "content": "<|endoftext|>", "special": True}], "model": {"type": "BPE"}}, f)


def cmd_mkfix(a):
    conf = hub_config(a.preset, a.project)
    os.makedirs(a.out, exist_ok=True)
    sd = init_params(conf, a.seed, a.eos_bias)
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    sd = OrderedDict((k, v.to(dt)) for k, v in sd.items())
    conf["torch_dtype"] = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[a.dtype]
    if a.no_gen_config:
        conf.update(max_length=12, num_beams=3)  # older uploads: generation settings in config.json
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    pre = dict(PREPROCESSOR)
    if a.imagenet_norm:  # some fine-tunes normalise as torchvision does
        pre.update(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    with open(os.path.join(a.out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    if not a.no_gen_config:
        with open(os.path.join(a.out, "generation_config.json"), "w") as f:
            json.dump(GENERATION, f, indent=2)
    write_tokenizer(a.out)
    if a.layout == "safetensors":
        write_safetensors(os.path.join(a.out, "model.safetensors"), sd)
    elif a.layout == "bin":
        torch.save(torch_state_dict(conf, sd), os.path.join(a.out, "pytorch_model.bin"))
    else:
        torch.save(torch_state_dict(conf, sd), os.path.join(a.out, "pytorch_model.bin"),
                   _use_new_zipfile_serialization=False)
    print(json.dumps(dict(out=a.out, layout=a.layout, dtype=a.dtype, tensors=len(sd))))


# --------------------------------------------------------------- readers

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base, sd = 8 + n, {}
    types = {"F32": (np.float32, None), "F16": (np.float16, None), "BF16": (np.uint16, "bf16")}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        npdt, special = types[v["dtype"]]
        arr = np.frombuffer(raw[base + b:base + e], dtype=npdt).reshape(v["shape"])
        if special == "bf16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        sd[k] = torch.from_numpy(arr.astype(np.float64))
    return sd


def load_weights(d):
    st, pt = os.path.join(d, "model.safetensors"), os.path.join(d, "pytorch_model.bin")
    if os.path.exists(st):
        sd = read_safetensors(st)
    else:
        sd = {k: v.to(torch.float64) for k, v in torch.load(pt, map_location="cpu").items()
              if v.is_floating_point()}
    return sd


# ------------------------------------------------------------- the math

def vit(W, e, pix):
    """pix [N,3,S,S] -> encoder states [N,1+G*G,D]."""
    P, H, eps = e["patch_size"], e["num_attention_heads"], e["layer_norm_eps"]
    pre = "encoder.embeddings."
    x = torch.nn.functional.conv2d(pix, W[pre + "patch_embeddings.projection.weight"],
                                   W[pre + "patch_embeddings.projection.bias"], stride=P)
    x = x.flatten(2).transpose(1, 2)
    cls = W[pre + "cls_token"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + W[pre + "position_embeddings"]
    lin = lambda n, t: t @ W[n + ".weight"].T + W[n + ".bias"]
    for i in range(e["num_hidden_layers"]):
        p = f"encoder.encoder.layer.{i}."
        h = layer_norm(x, W[p + "layernorm_before.weight"], W[p + "layernorm_before.bias"], eps)
        a = attention(lin(p + "attention.attention.query", h), lin(p + "attention.attention.key", h),
                      lin(p + "attention.attention.value", h), H, False)
        x = x + lin(p + "attention.output.dense", a)
        h = layer_norm(x, W[p + "layernorm_after.weight"], W[p + "layernorm_after.bias"], eps)
        x = x + lin(p + "output.dense", gelu_erf(lin(p + "intermediate.dense", h)))
    x = layer_norm(x, W["encoder.layernorm.weight"], W["encoder.layernorm.bias"], eps)
    if "enc_to_dec_proj.weight" in W:
        x = lin("enc_to_dec_proj", x)
    return x


def conv1d(W, n, x):
    return x @ W[n + ".weight"] + W[n + ".bias"]


def decoder_logits(W, g, toks, enc, past=0):
    """toks [B,T] at positions 0..T-1 (full recompute), enc [B,L,C] -> logits [B,T,V]."""
    t, H, C, eps = "decoder.transformer.", g["n_head"], g["n_embd"], g["layer_norm_epsilon"]
    T = toks.shape[1]
    x = W[t + "wte.weight"][toks] + W[t + "wpe.weight"][torch.arange(T)]
    for i in range(g["n_layer"]):
        p = f"{t}h.{i}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        q, k, v = conv1d(W, p + "attn.c_attn", h).split(C, dim=-1)
        x = x + conv1d(W, p + "attn.c_proj", attention(q, k, v, H, True))
        h = layer_norm(x, W[p + "ln_cross_attn.weight"], W[p + "ln_cross_attn.bias"], eps)
        q = conv1d(W, p + "crossattention.q_attn", h)
        k, v = conv1d(W, p + "crossattention.c_attn", enc).split(C, dim=-1)
        x = x + conv1d(W, p + "crossattention.c_proj", attention(q, k, v, H, False))
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        x = x + conv1d(W, p + "mlp.c_proj", gelu_new(conv1d(W, p + "mlp.c_fc", h)))
    x = layer_norm(x, W[t + "ln_f.weight"], W[t + "ln_f.bias"], eps)
    head = W[t + "wte.weight"] if g.get("tie_word_embeddings", True) else W["decoder.lm_head.weight"]
    return x @ head.T


def greedy(W, g, enc, steps):
    B = enc.shape[0]
    toks = torch.full((B, 1), EOT, dtype=torch.long)
    out_t, out_m, out_l = [], [], []
    for _ in range(steps):
        lg = decoder_logits(W, g, toks, enc)[:, -1]
        top = torch.topk(lg, 2, -1)
        nxt = lg.argmax(-1)
        out_t.append(nxt)
        out_m.append(top.values[:, 0] - top.values[:, 1])
        out_l.append(lg)
        toks = torch.cat([toks, nxt[:, None]], 1)
    return torch.stack(out_t, 1), torch.stack(out_m, 1), torch.stack(out_l, 1)


# ------------------------------------------------------------- beam search

def beam_search(W, g, enc1, num_beams, max_length, length_penalty, early_stopping):
    """One image, with the rules of transformers' generate() for beam search
    as current transformers has them (4.36 changed the length a score is
    normalised by to the generated tokens only; 4.50's vectorised rewrite
    kept the rules).  Per step: all running beams' log-softmax scores plus
    their sums; the best 2*num_beams candidates; a candidate that ends the
    caption (EOS, or reaching max_length, which counts the start token) is
    a finished hypothesis only when it ranks among the first num_beams, with
    score sum / generated_length^length_penalty (the EOS counted); the best
    num_beams candidates that do not end continue.  The finished set keeps
    the num_beams best.  The search stops when every candidate ends, when
    early_stopping is True and num_beams are finished, or when num_beams are
    finished and the best running sum divided by generated_length^lp (for
    "never" with lp > 0: by (max_length-1)^lp) is no better than the worst
    finished score.  Returns (tokens after the start token, score) of the
    best finished hypothesis."""
    V = g["vocab_size"]
    running = [([EOT], 0.0)]
    finished = []  # (score, tokens)
    cur_len = 1
    while True:
        toks = torch.tensor([r[0] for r in running])
        lg = decoder_logits(W, g, toks, enc1.expand(len(running), -1, -1))[:, -1]
        acc = torch.log_softmax(lg, -1) + torch.tensor([r[1] for r in running], dtype=torch.float64)[:, None]
        top_v, top_i = torch.topk(acc.reshape(-1), 2 * num_beams)
        cands = []
        for v, i in zip(top_v.tolist(), top_i.tolist()):
            b, t = divmod(i, V)
            ends = t == EOT or cur_len + 1 >= max_length
            cands.append((v, running[b][0] + [t], ends))
        full = len(finished) == num_beams
        if not (full and early_stopping is True):
            for rank, (v, seq, ends) in enumerate(cands[:num_beams]):
                if ends:
                    finished.append((v / (cur_len + 1 - 1) ** length_penalty, seq[1:]))
            finished = sorted(finished, key=lambda h: -h[0])[:num_beams]
        running = [(seq, v) for v, seq, ends in cands if not ends][:num_beams]
        cur_len += 1
        if all(c[2] for c in cands) or not running:
            break
        if len(finished) == num_beams:
            if early_stopping is True:
                break
            n = (max_length - 1) if (early_stopping == "never" and length_penalty > 0) else (cur_len - 1)
            if running[0][1] / n ** length_penalty <= finished[-1][0]:
                break
    return finished[0][1], finished[0][0]


# -------------------------------------------------------------------- run

def make_pixels(n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, 3, 224, 224), generator=gen, dtype=torch.float32) * 2 - 1


def load_images(paths, pre):
    """ViTImageProcessor: RGB, resize to size with PIL resample, rescale, normalize."""
    from PIL import Image
    size = pre["size"]
    h, w = (size["height"], size["width"]) if isinstance(size, dict) else (size, size)
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB").resize((w, h), resample=pre["resample"])
        x = np.asarray(im).astype(np.float32) * np.float32(pre["rescale_factor"])
        x = (x - np.array(pre["image_mean"], np.float32)) / np.array(pre["image_std"], np.float32)
        out.append(torch.from_numpy(x.transpose(2, 0, 1).copy()))
    return torch.stack(out)


def _write(path, t, dt):
    np.ascontiguousarray(t.detach().cpu().numpy().astype(dt)).tofile(path)


def cmd_run(a):
    t0 = time.time()
    torch.set_num_threads(a.threads)
    conf, gen, pre = read_config(a.model)
    W = load_weights(a.model)
    pix = load_images(a.images, pre) if a.images else make_pixels(a.n_images, a.seed)
    g = conf["decoder"]
    with torch.inference_mode():
        enc = vit(W, conf["encoder"], pix.to(torch.float64))
        toks, margin, logits = greedy(W, g, enc, a.steps)
        beams, nb = [], a.beams or gen["num_beams"]  # 0: the folder's generate() defaults
        for n in range(enc.shape[0] if nb > 1 else 0):
            t, s = beam_search(W, g, enc[n:n + 1], nb, gen["max_length"], gen["length_penalty"],
                               gen["early_stopping"])
            beams.append(dict(tokens=t, score=s))
    os.makedirs(a.out, exist_ok=True)
    o = lambda n: os.path.join(a.out, n)
    _write(o("pixels.f32"), pix, "<f4")
    _write(o("vis.f32"), enc, "<f4")
    _write(o("logits0.f32"), logits[:, 0], "<f4")
    _write(o("greedy.i32"), toks, "<i4")
    _write(o("margin.f32"), margin, "<f4")
    _write(o("logits_steps.f32"), logits, "<f4")
    meta = dict(n=pix.shape[0], steps=a.steps, latents=enc.shape[1], width=enc.shape[2], vocab=g["vocab_size"],
                greedy=toks.tolist(), logits0_std=[round(float(x), 4) for x in logits[:, 0].std(-1)],
                min_margin=round(float(margin.min()), 6), generation=gen, beams=beams, beam_width=nb,
                seconds=round(time.time() - t0, 2))
    with open(o("meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: meta[k] for k in ("n", "steps", "logits0_std", "greedy", "beams", "seconds")}))


def cmd_check(a):
    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    N, K, V = meta["n"], meta["steps"], meta["vocab"]
    greedy_t = np.fromfile(os.path.join(a.dir, "greedy.i32"), "<i4").reshape(N, K)
    lg0 = np.fromfile(os.path.join(a.dir, "logits0.f32"), "<f4").reshape(N, V)
    fails = 0

    def report(ok, what):
        nonlocal fails
        print(("PASS: " if ok else "FAIL: ") + what)
        fails += not ok

    for i in range(N):
        s = float(lg0[i].std())
        report(np.isfinite(lg0[i]).all() and s > 1, f"image {i}: logits0 finite, std {s:.3f} > 1")
        row = greedy_t[i].tolist()
        upto = row[:row.index(EOT) + 1] if EOT in row else row
        report(len(upto) < 3 or len(set(upto)) > 1, f"image {i}: greedy tokens vary {row}")
    report(N < 2 or len({tuple(r) for r in greedy_t.tolist()}) == N, f"greedy sequences differ across {N} images")
    if a.want_eos:
        report(any(EOT in b["tokens"] for b in meta["beams"]) and bool((greedy_t == EOT).any()),
               "captions end on 50256 (beam and greedy): stopping is exercised")
    sys.exit(1 if fails else 0)


# ------------------------------------------------------------------ bench

def greedy_kv(W, g, enc, steps):
    """KV-cached greedy decoding in W's dtype (the fast way to run it in
    torch): cross K/V once per image, one token per step."""
    t, H, C, eps = "decoder.transformer.", g["n_head"], g["n_embd"], g["layer_norm_epsilon"]
    B = enc.shape[0]
    xkv = [conv1d(W, f"{t}h.{i}.crossattention.c_attn", enc).split(C, dim=-1) for i in range(g["n_layer"])]
    ks, vs = [None] * g["n_layer"], [None] * g["n_layer"]
    tok = torch.full((B, 1), EOT, dtype=torch.long)
    out = []
    for pos in range(steps):
        x = W[t + "wte.weight"][tok] + W[t + "wpe.weight"][pos]
        for i in range(g["n_layer"]):
            p = f"{t}h.{i}."
            h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            q, k, v = conv1d(W, p + "attn.c_attn", h).split(C, dim=-1)
            ks[i] = k if ks[i] is None else torch.cat([ks[i], k], 1)
            vs[i] = v if vs[i] is None else torch.cat([vs[i], v], 1)
            x = x + conv1d(W, p + "attn.c_proj", attention(q, ks[i], vs[i], H, False))
            h = layer_norm(x, W[p + "ln_cross_attn.weight"], W[p + "ln_cross_attn.bias"], eps)
            q = conv1d(W, p + "crossattention.q_attn", h)
            x = x + conv1d(W, p + "crossattention.c_proj", attention(q, xkv[i][0], xkv[i][1], H, False))
            h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            x = x + conv1d(W, p + "mlp.c_proj", gelu_new(conv1d(W, p + "mlp.c_fc", h)))
        x = layer_norm(x, W[t + "ln_f.weight"], W[t + "ln_f.bias"], eps)
        tok = (x @ W[t + "wte.weight"].T).argmax(-1)
        out.append(tok)
    return torch.cat(out, 1)


def cmd_bench(a):
    """PyTorch's stream of captions for this family: batches of 16 images
    encoded, then `tokens` greedy tokens each with a KV cache; fp32 or bf16
    (every weight and activation cast), a.threads threads."""
    torch.set_num_threads(a.threads)
    conf, _, _ = read_config(a.model)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    W = {k: v.to(dt) for k, v in load_weights(a.model).items()}
    g = conf["decoder"]
    with torch.inference_mode():
        pix = make_pixels(16, 1).to(dt)
        check = greedy(  # the fast path computes what the reference does
            {k: v.to(torch.float64) for k, v in W.items()}, g, vit(W, conf["encoder"], pix[:1]).to(torch.float64), 3)[0]
        same = dt != torch.float32 or torch.equal(check, greedy_kv(W, g, vit(W, conf["encoder"], pix[:1]), 3))
        greedy_kv(W, g, vit(W, conf["encoder"], pix[:2]), 2)  # warm-up
        t0 = time.time()
        n = 0
        for _ in range(a.batches):
            greedy_kv(W, g, vit(W, conf["encoder"], pix), a.tokens)
            n += pix.shape[0]
        s = time.time() - t0
    print(json.dumps(dict(bench="hf_captions_stream", impl="torch", dtype=a.dtype, threads=a.threads,
                          torch=torch.__version__, images=n, batch=16, tokens=a.tokens,
                          captions_per_s=round(n / s, 3), kv_matches_reference=bool(same))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mkfix")
    m.add_argument("--out", required=True)
    m.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    m.add_argument("--layout", choices=["safetensors", "bin", "legacy"], default="safetensors")
    m.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    m.add_argument("--seed", type=int, default=3)
    m.add_argument("--eos-bias", type=float, default=0.0)
    m.add_argument("--project", action="store_true", help="ViT 48 wide: enc_to_dec_proj")
    m.add_argument("--no-gen-config", action="store_true", help="generation settings in config.json only")
    m.add_argument("--imagenet-norm", action="store_true", help="preprocessor_config.json with ImageNet mean/std")
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--n-images", type=int, default=2)
    r.add_argument("--images", nargs="*")
    r.add_argument("--seed", type=int, default=5)
    r.add_argument("--steps", type=int, default=15)
    r.add_argument("--beams", type=int, default=0, help="0: num_beams of the folder's generation settings")
    r.add_argument("--threads", type=int, default=2)
    bn = sub.add_parser("bench")
    bn.add_argument("--model", required=True)
    bn.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    bn.add_argument("--threads", type=int, default=2)
    bn.add_argument("--tokens", type=int, default=15)
    bn.add_argument("--batches", type=int, default=2)
    c = sub.add_parser("check")
    c.add_argument("--dir", required=True)
    c.add_argument("--want-eos", action="store_true")
    a = ap.parse_args()
    {"mkfix": cmd_mkfix, "run": cmd_run, "check": cmd_check, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
