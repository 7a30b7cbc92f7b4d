#!/usr/bin/env python3
"""vgpt_ref.py - the PyTorch oracle the C engine is proven against.

Why this file exists: the published Vision-GPT checkpoint cannot be downloaded
here, so we build random checkpoints with exactly the published layout
(mkckpt), compute what the model must output for them in float64 (run), make
sure those outputs are not degenerate, so that matching them proves something
(check), and measure how fast PyTorch itself is on this machine (bench).
Everything is written from /work/shared/docs/model-spec.md.

Always run with the Debian interpreter: /usr/bin/python3 (torch 1.13).
Benchmarks: run with OMP_WAIT_POLICY=PASSIVE (set below if unset).

    vgpt_ref.py mkckpt --preset tiny --dtype fp32 --cross 3,6,9 --seed 1 --out D/m.pth
    vgpt_ref.py run    --ckpt D/m.pth --n-images 2 --seed 7 --steps 8 --out D/run
    vgpt_ref.py check  --dir D/run
    vgpt_ref.py bench  --ckpt D/full.pth --threads 2
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede torch import

import argparse
import json
import math
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from ref_math import attend, gelu_erf, gelu_tanh, layer_norm, split_heads

BOS = 50256  # <|endoftext|>, used as BOS
PAD = 50257  # <|pad|>

PRESETS = {
    # exactly the published dims; pos_rows > context_length as published: the
    # author built the model with context 256, then copied GPT-2's whole
    # 1024-row wpe into pos_emb (model-spec.md, pos_emb)
    "full": dict(vis_width=768, vis_layers=12, vis_heads=12, vis_mlp=3072,
                 emb_dim=768, n_layers=12, n_heads=12, context_length=256,
                 pos_rows=1024, vocab_size=50258, latents=64, depth=2, p_heads=8,
                 p_dim_head=64, p_mlp=256),
    # same structure, small widths; vision width == text width, but head
    # width 32 (not 64), so config.json is needed to get the heads right
    "tiny": dict(vis_width=64, vis_layers=2, vis_heads=2, vis_mlp=256,
                 emb_dim=64, n_layers=12, n_heads=4, context_length=32,
                 pos_rows=128, vocab_size=50258, latents=8, depth=2, p_heads=2,
                 p_dim_head=16, p_mlp=32),
}
TINY_PROJECT = dict(vis_width=48, vis_heads=3, vis_mlp=192)

# Init gains, tuned so that random models give non-degenerate greedy
# captions (see init_params).  Linear weights are N(0, (gain/sqrt(fan_in))^2).
INIT = dict(
    tok_emb=0.02,     # small: with a tied head, big embeddings echo the input token
    pos_emb=0.05,     # position reaches TB0 strongly: breaks t -> t fixed points
    ln_w=0.1,         # LN scales = 1 + N(0, ln_w)
    ln_b=0.02,        # LN shifts; biases below: nonzero but small, so a common
    bias=0.02,        # component does not swamp what differs per image/token
    lin=1.5,          # plain linears
    qk=2.0,           # q,k projections: peaky, image-specific attention
    cls=0.1, vpos=0.1, conv=1.0,  # ViT class token, pos embedding, patch conv
    vit_out=0.5,      # ViT block outputs: the patch identity survives 12 layers
    latents=0.3,      # small, so the image part of the visual tokens dominates
    cross_kv=1.5,     # cross-block W_key/W_value (visual tokens are unnormalized)
    cross_out=2.5,    # cross-block out_proj: how loud the image is
    tb0_out=6.0,      # TB0 outputs: the input token and position must matter
    tb_out=0.5,       # the other transformer blocks
    logit_std=4.0,    # target first-step logits std (sets final_norm.scale)
)


# ---------------------------------------------------------------- modules
# These only define the parameter layout (state-dict keys); the math lives
# in the functional code below so run/bench can use any dtype.

class GPTLayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(d))
        self.shift = nn.Parameter(torch.zeros(d))


class Attention(nn.Module):
    def __init__(self, C, P, causal):
        super().__init__()
        self.W_query = nn.Linear(C, C, bias=True)
        self.W_key = nn.Linear(C, C, bias=True)
        self.W_value = nn.Linear(C, C, bias=True)
        self.out_proj = nn.Linear(C, C)
        if causal:
            self.register_buffer("mask", torch.triu(torch.ones(P, P), diagonal=1))


class FeedForward(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(approximate="tanh"),
                                    nn.Linear(4 * C, C))


class TransformerBlock(nn.Module):
    def __init__(self, C, P):
        super().__init__()
        self.att = Attention(C, P, causal=True)
        self.ff = FeedForward(C)
        self.norm1 = GPTLayerNorm(C)
        self.norm2 = GPTLayerNorm(C)


class CrossBlock(nn.Module):
    def __init__(self, C, P):
        super().__init__()
        self.attn_norm = GPTLayerNorm(C)
        self.att = Attention(C, P, causal=False)


class Resampler(nn.Module):
    def __init__(self, C, L, depth, heads, dim_head, hidden):
        super().__init__()
        inner = heads * dim_head
        self.latents = nn.Parameter(torch.zeros(L, C))
        self.to_q = nn.ModuleList([nn.Linear(C, inner, bias=False) for _ in range(depth)])
        self.to_kv = nn.ModuleList([nn.Linear(C, 2 * inner, bias=False) for _ in range(depth)])
        self.proj_out = nn.ModuleList([nn.Linear(inner, C, bias=False) for _ in range(depth)])
        self.norms_latent = nn.ModuleList([nn.LayerNorm(C) for _ in range(depth)])
        self.norms_media = nn.ModuleList([nn.LayerNorm(C) for _ in range(depth)])
        self.mlp = nn.ModuleList([
            nn.Sequential(nn.LayerNorm(C), nn.Linear(C, hidden), nn.GELU(), nn.Linear(hidden, C))
            for _ in range(depth)])


class Project(nn.Module):
    def __init__(self, w_in, w_out):
        super().__init__()
        self.proj = nn.Linear(w_in, w_out)


class VisionEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = torchvision.models.VisionTransformer(
            image_size=224, patch_size=16, num_layers=cfg["vis_layers"],
            num_heads=cfg["vis_heads"], hidden_dim=cfg["vis_width"],
            mlp_dim=cfg["vis_mlp"], num_classes=1000)


class Vision(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["emb_dim"]
        self.encoder = VisionEncoder(cfg)
        if cfg["vis_width"] != C:
            self.project = Project(cfg["vis_width"], C)
        self.resampler = Resampler(C, cfg["latents"], cfg["depth"], cfg["p_heads"],
                                   cfg["p_dim_head"], cfg["p_mlp"])


class VisionGPT(nn.Module):
    def __init__(self, cfg, cross):
        super().__init__()
        C, P, V = cfg["emb_dim"], cfg["context_length"], cfg["vocab_size"]
        self.vision = Vision(cfg)
        self.tok_emb = nn.Embedding(V, C)
        self.pos_emb = nn.Embedding(cfg.get("pos_rows", P), C)
        blocks = []
        for i in range(cfg["n_layers"]):
            if i in cross:
                blocks.append(CrossBlock(C, P))
            blocks.append(TransformerBlock(C, P))
        self.trf_blocks = nn.Sequential(*blocks)
        self.final_norm = GPTLayerNorm(C)
        self.out_head = nn.Linear(C, V, bias=False)
        self.out_head.weight = self.tok_emb.weight  # tied


# ------------------------------------------------------------------ init

def _gain_for(name, blk, cross_blocks, first_tb):
    """Linear-weight gain by role; see INIT."""
    if blk in cross_blocks and name.endswith(("W_key.weight", "W_value.weight")):
        return INIT["cross_kv"]
    if blk in cross_blocks and name.endswith("out_proj.weight"):
        return INIT["cross_out"]
    if name.endswith(("W_query.weight", "W_key.weight")) or ".to_q." in name:
        return INIT["qk"]
    if name.startswith(first_tb + ".") and name.endswith(("out_proj.weight", "ff.layers.2.weight")):
        return INIT["tb0_out"]
    if name.startswith("trf_blocks.") and name.endswith(("out_proj.weight", "ff.layers.2.weight")):
        return INIT["tb_out"]
    if ".encoder_layer_" in name and name.endswith(("out_proj.weight", "mlp.3.weight")):
        return INIT["vit_out"]
    return INIT["lin"]


def init_params(model, cfg, cross, seed):
    """Deterministic non-degenerate random init (everything nonzero, so a
    dropped bias or LN shift in the engine shows up).

    Why the final-norm scale: the head is tied, so logits = LN(h)*s . tok_emb.
    Small embeddings keep the input token from echoing itself (block outputs
    dominate h); the spread of logits then comes from s, chosen so that
    std(logits) ~ INIT['logit_std'] for any width.  The token and position
    reach the logits through a loud first transformer block (tb0_out, pos_emb),
    the image through loud cross blocks (cross_out), while the other blocks are
    quieter (tb_out); otherwise captions freeze on one token or ignore the
    image.  Tuned on tiny and full, both cross layouts, several seeds."""
    g = torch.Generator().manual_seed(seed)
    C = cfg["emb_dim"]
    cross_blocks = {n for n, m in model.named_modules() if isinstance(m, CrossBlock)}
    first_tb = next(n for n, m in model.named_modules() if isinstance(m, TransformerBlock))

    def rn(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = p.shape
            blk = name.rsplit(".att.", 1)[0] if ".att." in name else None
            if name == "tok_emb.weight":
                v = rn(shape, INIT["tok_emb"])
            elif name == "pos_emb.weight":
                v = rn(shape, INIT["pos_emb"])
            elif name == "final_norm.scale":
                s = INIT["logit_std"] / (INIT["tok_emb"] * math.sqrt(C))
                v = s * (1 + rn(shape, INIT["ln_w"]))
            elif name.endswith("class_token"):
                v = rn(shape, INIT["cls"])
            elif name.endswith("pos_embedding"):
                v = rn(shape, INIT["vpos"])
            elif name.endswith("resampler.latents"):
                v = rn(shape, INIT["latents"])
            elif name.endswith("conv_proj.weight"):
                v = rn(shape, INIT["conv"] / math.sqrt(shape[1] * shape[2] * shape[3]))
            elif name.endswith("in_proj_weight"):  # q,k rows get the qk gain
                W = shape[1]
                v = torch.cat([rn((2 * W, W), INIT["qk"] / math.sqrt(W)),
                               rn((W, W), INIT["lin"] / math.sqrt(W))])
            elif p.dim() == 1 and _is_norm_weight(name):
                v = 1 + rn(shape, INIT["ln_w"])
            elif p.dim() == 1:  # LN shifts and linear biases
                v = rn(shape, INIT["ln_b"] if _is_norm_bias(name) else INIT["bias"])
            elif p.dim() == 2:
                gain = _gain_for(name, blk, cross_blocks, first_tb)
                v = rn(shape, gain / math.sqrt(shape[1]))
            else:
                raise ValueError(f"init: unexpected parameter {name} {tuple(shape)}")
            p.copy_(v)


def _is_norm_weight(name):
    return (name.endswith((".scale", "ln_1.weight", "ln_2.weight", "encoder.ln.weight"))
            or ".norms_" in name and name.endswith(".weight")
            or (".mlp." in name and ".resampler." in name and name.endswith(".0.weight")))


def _is_norm_bias(name):
    return (name.endswith((".shift", "ln_1.bias", "ln_2.bias", "encoder.ln.bias"))
            or ".norms_" in name and name.endswith(".bias")
            or (".mlp." in name and ".resampler." in name and name.endswith(".0.bias")))


# ----------------------------------------------------------------- mkckpt

def published_config(cfg, cross, preset):
    """config.json as the author's training code writes it (the same dict is
    saved as the checkpoint's 'config')."""
    c = OrderedDict()
    c["vocab_size"] = cfg["vocab_size"]
    c["emb_dim"] = cfg["emb_dim"]
    c["context_length"] = cfg["context_length"]
    c["n_heads"] = cfg["n_heads"]
    c["n_layers"] = cfg["n_layers"]
    c["drop_rate"] = 0.1
    c["qkv_bias"] = True
    c["cross_attention_pos"] = list(cross)
    c["vision_enabled"] = True
    c["vision_encoder_type"] = "torchvision_vit_b_16"
    c["vision_pretrained"] = True
    c["vision_freeze"] = True
    c["perceiver_num_latents"] = cfg["latents"]
    c["perceiver_depth"] = cfg["depth"]
    c["perceiver_heads"] = cfg["p_heads"]
    c["perceiver_dim_head"] = cfg["p_dim_head"]
    if preset != "full":
        c["vision_num_heads"] = cfg["vis_heads"]
    c["weight_decay"] = 0.01
    c["learning_rate"] = 1e-4
    return c


def _training_loss():
    """'loss' as the training loop saves it: a 0-dim tensor that still
    requires grad (a non-leaf), its storage tagged 'cuda:0'.  This machine
    has no GPU, so a location tagger of our own writes the tag."""
    loss = torch.tensor(2.75, requires_grad=True) * 1.0
    ptr = loss.storage().data_ptr()

    def tag(obj):
        try:
            return "cuda:0" if obj.data_ptr() == ptr else None
        except Exception:
            return None
    torch.serialization.register_package(1, tag, lambda storage, location: None)
    return loss


def _published_dict(sd, conf):
    return {"model_state_dict": sd, "config": dict(conf), "epoch": 9, "loss": _training_loss(),
            "model_class": "GPTModal"}


def write_tokenizer_dir(out_dir):
    """tokenizer/ as GPT2TokenizerFast.save_pretrained writes it after
    add_special_tokens({'pad_token': '<|pad|>'}).  vocab.json is GPT-2's
    (vgpt's data/encoder.json); merges.txt holds only its header, since no
    test decodes through BPE merges and the real file is not shipped."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "data", "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    d = os.path.join(out_dir, "tokenizer")
    os.makedirs(d, exist_ok=True)
    eot, pad = "<|endoftext|>", "<|pad|>"
    special = lambda i, c: dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False,
                                normalized=i != BOS, special=True)
    files = {
        "vocab.json": vocab,
        "added_tokens.json": {pad: PAD},
        "special_tokens_map.json": dict(bos_token=eot, eos_token=eot, pad_token=pad, unk_token=eot),
        "tokenizer_config.json": dict(add_prefix_space=False, bos_token=eot, eos_token=eot, pad_token=pad,
                                      unk_token=eot, model_max_length=1024, tokenizer_class="GPT2Tokenizer",
                                      clean_up_tokenization_spaces=True),
        "tokenizer.json": dict(version="1.0", truncation=None, padding=None,
                               added_tokens=[special(BOS, eot), special(PAD, pad)], normalizer=None,
                               pre_tokenizer=dict(type="ByteLevel", add_prefix_space=False, trim_offsets=True,
                                                  use_regex=True),
                               post_processor=None, decoder=dict(type="ByteLevel", add_prefix_space=True,
                                                                 trim_offsets=True, use_regex=True),
                               model=dict(type="BPE", dropout=None, unk_token=None, continuing_subword_prefix="",
                                          end_of_word_suffix="", fuse_unk=False, vocab=vocab, merges=[])),
    }
    for name, obj in files.items():
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")


def cmd_mkckpt(a):
    cfg = dict(PRESETS[a.preset])
    if a.project:
        if a.preset != "tiny":
            sys.exit("mkckpt: --project is only for --preset tiny")
        cfg.update(TINY_PROJECT)
    if a.pos_rows:
        if a.pos_rows < cfg["context_length"]:
            sys.exit(f"mkckpt: --pos-rows {a.pos_rows}: must be >= the context {cfg['context_length']}")
        cfg["pos_rows"] = a.pos_rows
    cross = sorted({int(x) for x in a.cross.split(",") if x.strip()})
    if any(c < 0 or c >= cfg["n_layers"] for c in cross):
        sys.exit(f"mkckpt: --cross {a.cross}: positions must be in 0..{cfg['n_layers'] - 1}")
    t0 = time.time()
    torch.manual_seed(a.seed)  # module constructors draw too; keep them deterministic
    model = VisionGPT(cfg, cross)
    init_params(model, cfg, cross, a.seed)
    if a.untied:
        model.out_head.weight = nn.Parameter(model.tok_emb.weight.detach().clone())
    if a.dtype == "fp16" and a.tied_fp16:
        model = model.half()  # module-wise: tok_emb and out_head stay one storage
    model.eval()
    sd = model.state_dict()
    if a.dtype == "fp16" and not a.tied_fp16:
        # tensor by tensor, as the published fp16 file was converted: every
        # tensor (masks included) gets a storage of its own, so the head is untied
        sd = OrderedDict((k, v.detach().half().clone()) for k, v in sd.items())
    conf = published_config(cfg, cross, a.preset)
    if a.bare:
        obj = sd
    elif a.minimal:
        obj = {"model_state_dict": sd}
    else:
        obj = _published_dict(sd, conf)
    if a.extras:
        if a.bare:
            sys.exit("mkckpt: --extras needs a wrapper dict (not --bare)")
        obj["optimizer_state_dict"] = _tiny_adam_state(a.seed)
        obj["epoch"] = np.int64(3)
        obj["best_loss"] = np.float32(2.75)
        obj["args"] = argparse.Namespace(lr=5e-5, batch_size=32, note="opaque custom class")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    torch.save(obj, a.out)
    if not a.no_config:
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(conf, f, indent=2)
    if not a.no_tokenizer:
        write_tokenizer_dir(out_dir)
    n = sum(v.numel() for v in sd.values())
    tied = sd["out_head.weight"].data_ptr() == sd["tok_emb.weight"].data_ptr()
    print(json.dumps({"ckpt": a.out, "preset": a.preset, "dtype": a.dtype, "cross": cross,
                      "tied": tied, "pos_rows": cfg["pos_rows"], "context": cfg["context_length"],
                      "tensors": len(sd), "numel": n,
                      "bytes": os.path.getsize(a.out), "seconds": round(time.time() - t0, 2)}))


def _tiny_adam_state(seed):
    g = torch.Generator().manual_seed(seed + 1)
    p = nn.Parameter(torch.randn(4, generator=g))
    opt = torch.optim.Adam([p], lr=1e-3)
    (p ** 2).sum().backward()
    opt.step()
    return opt.state_dict()


# ----------------------------------------------------------- loading

def load_state_dict(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or "tok_emb.weight" not in obj:
        raise ValueError(f"{path}: no state dict with tok_emb.weight")
    return obj


def build(sd, conf, dtype):
    """Parameters (widened/narrowed to dtype) + dims, all from shapes, except
    head counts, which come from config.json (defaults: head width 64)."""
    Pm = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    V, C = Pm["tok_emb.weight"].shape
    P = context_of(Pm, conf)
    layout, j = [], 0
    while any(k.startswith(f"trf_blocks.{j}.") for k in Pm):
        pre = f"trf_blocks.{j}."
        is_cross = pre + "attn_norm.scale" in Pm and not any(k.startswith(pre + "ff.") for k in Pm)
        layout.append("X" if is_cross else "T")
        j += 1
    cross_pos, n_t = [], 0
    for kind in layout:
        if kind == "X":
            cross_pos.append(n_t)
        else:
            n_t += 1
    vp = "vision.encoder.model."
    Wv = Pm[vp + "conv_proj.weight"].shape[0]
    n_vl = 0
    while vp + f"encoder.layers.encoder_layer_{n_vl}.ln_1.weight" in Pm:
        n_vl += 1
    for i in range(n_vl):  # older torchvision names
        for old, new in (("linear_1", "0"), ("linear_2", "3")):
            for s in ("weight", "bias"):
                ko = vp + f"encoder.layers.encoder_layer_{i}.mlp.{old}.{s}"
                if ko in Pm:
                    Pm[vp + f"encoder.layers.encoder_layer_{i}.mlp.{new}.{s}"] = Pm.pop(ko)
    rp = "vision.resampler."
    L = Pm[rp + "latents"].shape[0]
    depth = 0
    while rp + f"to_q.{depth}.weight" in Pm:
        depth += 1
    d = dict(V=V, C=C, P=P, layout=layout, cross_pos=cross_pos, n_layers=n_t,
             Wv=Wv, vis_layers=n_vl, L=L, depth=depth,
             n_heads=conf.get("n_heads", C // 64),
             vis_heads=conf.get("vision_num_heads", Wv // 64),
             p_heads=conf.get("perceiver_heads", 8),
             p_dim_head=conf.get("perceiver_dim_head", 64),
             project="vision.project.proj.weight" in Pm)
    _validate(d, conf, Pm)
    return Pm, d


def context_of(Pm, conf):
    """The context (model-spec.md, pos_emb): the causal mask's size, else
    config.json's context_length, else pos_emb's rows; pos_emb may have more
    rows (the published file: 1024 rows, context 256), never fewer."""
    rows = Pm["pos_emb.weight"].shape[0]
    masks = {tuple(v.shape) for k, v in Pm.items() if k.endswith(".att.mask")}
    if len(masks) > 1:
        raise ValueError(f"att.mask shapes disagree: {sorted(masks)}")
    if masks:
        (r, c), = masks
        if r != c:
            raise ValueError(f"att.mask is {r}x{c}, not square")
        if "context_length" in conf and conf["context_length"] != r:
            raise ValueError(f"config.json: context_length {conf['context_length']} but att.mask is {r}x{r}")
        P = r
    else:
        P = conf.get("context_length", rows)
    if P > rows:
        raise ValueError(f"context {P} > pos_emb.weight rows {rows}")
    return P


def _validate(d, conf, Pm):
    want = dict(emb_dim=d["C"], vocab_size=d["V"],
                n_layers=d["n_layers"], cross_attention_pos=d["cross_pos"],
                perceiver_num_latents=d["L"], perceiver_depth=d["depth"])
    for k, v in want.items():
        if k in conf and conf[k] != v:
            raise ValueError(f"config.json: {k}: checkpoint shapes say {v}, config says {conf[k]}")
    inner = Pm["vision.resampler.to_q.0.weight"].shape[0]
    if d["p_heads"] * d["p_dim_head"] != inner:
        raise ValueError(f"resampler.to_q.0.weight: {inner} rows, expected perceiver_heads x "
                         f"perceiver_dim_head = {d['p_heads']}x{d['p_dim_head']}")
    for name, w, h in (("n_heads", d["C"], d["n_heads"]), ("vision_num_heads", d["Wv"], d["vis_heads"])):
        if h <= 0 or w % h:
            raise ValueError(f"config: {name}={h} does not divide width {w}")


def load(path, dtype):
    sd = load_state_dict(path)
    cpath = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    conf = {}
    if os.path.exists(cpath):
        with open(cpath) as f:
            conf = json.load(f)
    return build(sd, conf, dtype)


# ------------------------------------------------------------- the math

def vit(Pm, d, pix):
    # pix [B,3,224,224] -> media [B,196,Wv] (class token dropped)
    p = "vision.encoder.model."
    w = Pm[p + "conv_proj.weight"]                  # [Wv,3,ps,ps]
    Wv, ps = w.shape[0], w.shape[2]
    B, _, Hi, Wi = pix.shape
    gh, gw = Hi // ps, Wi // ps
    patches = pix.reshape(B, 3, gh, ps, gw, ps).permute(0, 2, 4, 1, 3, 5).reshape(B, gh * gw, -1)
    x = F.linear(patches, w.reshape(Wv, -1), Pm[p + "conv_proj.bias"])  # row-major patches
    x = torch.cat([Pm[p + "class_token"].expand(B, -1, -1), x], dim=1)
    x = x + Pm[p + "encoder.pos_embedding"]
    H = d["vis_heads"]
    for i in range(d["vis_layers"]):
        q = p + f"encoder.layers.encoder_layer_{i}."
        h = layer_norm(x, Pm[q + "ln_1.weight"], Pm[q + "ln_1.bias"], 1e-6)
        qkv = F.linear(h, Pm[q + "self_attention.in_proj_weight"], Pm[q + "self_attention.in_proj_bias"])
        qq, kk, vv = (split_heads(t, H) for t in qkv.chunk(3, dim=-1))
        a = attend(qq, kk, vv, causal=False)
        x = x + F.linear(a, Pm[q + "self_attention.out_proj.weight"], Pm[q + "self_attention.out_proj.bias"])
        h = layer_norm(x, Pm[q + "ln_2.weight"], Pm[q + "ln_2.bias"], 1e-6)
        h = gelu_erf(F.linear(h, Pm[q + "mlp.0.weight"], Pm[q + "mlp.0.bias"]))
        x = x + F.linear(h, Pm[q + "mlp.3.weight"], Pm[q + "mlp.3.bias"])
    x = layer_norm(x, Pm[p + "encoder.ln.weight"], Pm[p + "encoder.ln.bias"], 1e-6)
    return x[:, 1:]


def resampler(Pm, d, m):
    # m [B,N,C] media -> visual tokens [B,L,C]; media is NOT concatenated
    # with the latents, and there is no final norm
    p = "vision.resampler."
    B = m.shape[0]
    x = Pm[p + "latents"].unsqueeze(0).expand(B, -1, -1)
    H = d["p_heads"]
    for i in range(d["depth"]):
        q = F.linear(layer_norm(x, Pm[p + f"norms_latent.{i}.weight"], Pm[p + f"norms_latent.{i}.bias"], 1e-5),
                     Pm[p + f"to_q.{i}.weight"])
        kv = F.linear(layer_norm(m, Pm[p + f"norms_media.{i}.weight"], Pm[p + f"norms_media.{i}.bias"], 1e-5),
                      Pm[p + f"to_kv.{i}.weight"])
        k, v = kv.chunk(2, dim=-1)
        a = attend(split_heads(q, H), split_heads(k, H), split_heads(v, H), causal=False)
        x = x + F.linear(a, Pm[p + f"proj_out.{i}.weight"])
        h = layer_norm(x, Pm[p + f"mlp.{i}.0.weight"], Pm[p + f"mlp.{i}.0.bias"], 1e-5)
        h = gelu_erf(F.linear(h, Pm[p + f"mlp.{i}.1.weight"], Pm[p + f"mlp.{i}.1.bias"]))
        x = x + F.linear(h, Pm[p + f"mlp.{i}.3.weight"], Pm[p + f"mlp.{i}.3.bias"])
    return x


def encode(Pm, d, pix):
    # pix [B,3,224,224] -> visual tokens [B,L,C]
    m = vit(Pm, d, pix)
    if d["project"]:
        m = F.linear(m, Pm["vision.project.proj.weight"], Pm["vision.project.proj.bias"])
    return resampler(Pm, d, m)


def _lin(Pm, pre, x):
    return F.linear(x, Pm[pre + ".weight"], Pm[pre + ".bias"])


def _gln(Pm, pre, x):
    return layer_norm(x, Pm[pre + ".scale"], Pm[pre + ".shift"], 1e-5)


def _ff(Pm, b, h):
    x = _gln(Pm, b + "norm2", h)
    return _lin(Pm, b + "ff.layers.2", gelu_tanh(_lin(Pm, b + "ff.layers.0", x)))


def cross_kv(Pm, d, vis):
    # per cross block: K, V [B,H,L,D] of the visual tokens (once per image)
    out = {}
    for j, kind in enumerate(d["layout"]):
        if kind == "X":
            b = f"trf_blocks.{j}.att."
            out[j] = (split_heads(_lin(Pm, b + "W_key", vis), d["n_heads"]),
                      split_heads(_lin(Pm, b + "W_value", vis), d["n_heads"]))
    return out


def text_forward(Pm, d, tokens, vis, all_logits=False):
    # tokens [B,T] int64, vis [B,L,C] -> logits [B,V] of the last position
    # ([B,T,V] with all_logits); full recompute, no cache
    B, T = tokens.shape
    H = d["n_heads"]
    h = Pm["tok_emb.weight"][tokens] + Pm["pos_emb.weight"][:T]
    xkv = cross_kv(Pm, d, vis)
    for j, kind in enumerate(d["layout"]):
        b = f"trf_blocks.{j}."
        if kind == "X":
            q = split_heads(_lin(Pm, b + "att.W_query", _gln(Pm, b + "attn_norm", h)), H)
            h = h + _lin(Pm, b + "att.out_proj", attend(q, *xkv[j], causal=False))
        else:
            x = _gln(Pm, b + "norm1", h)
            q, k, v = (split_heads(_lin(Pm, b + "att." + n, x), H) for n in ("W_query", "W_key", "W_value"))
            h = h + _lin(Pm, b + "att.out_proj", attend(q, k, v, causal=True))
            h = h + _ff(Pm, b, h)
    if not all_logits:
        h = h[:, -1]
    return F.linear(_gln(Pm, "final_norm", h), Pm["out_head.weight"])


class KVCache:
    """Self-attention K/V per transformer block (preallocated [B,H,maxT,D]),
    cross K/V per cross block computed once from the visual tokens."""

    def __init__(self, Pm, d, vis, max_t):
        B, H, C = vis.shape[0], d["n_heads"], d["C"]
        self.cross = cross_kv(Pm, d, vis)
        self.k = {j: vis.new_zeros(B, H, max_t, C // H) for j, t in enumerate(d["layout"]) if t == "T"}
        self.v = {j: vis.new_zeros(B, H, max_t, C // H) for j in self.k}
        self.t = 0


def decode_step(Pm, d, cache, tok):
    # tok [B] int64 (the token at position cache.t) -> logits [B,V]
    H, t = d["n_heads"], cache.t
    h = (Pm["tok_emb.weight"][tok] + Pm["pos_emb.weight"][t]).unsqueeze(1)  # [B,1,C]
    for j, kind in enumerate(d["layout"]):
        b = f"trf_blocks.{j}."
        if kind == "X":
            q = split_heads(_lin(Pm, b + "att.W_query", _gln(Pm, b + "attn_norm", h)), H)
            h = h + _lin(Pm, b + "att.out_proj", attend(q, *cache.cross[j], causal=False))
        else:
            x = _gln(Pm, b + "norm1", h)
            q, k, v = (split_heads(_lin(Pm, b + "att." + n, x), H) for n in ("W_query", "W_key", "W_value"))
            cache.k[j][:, :, t:t + 1] = k
            cache.v[j][:, :, t:t + 1] = v
            a = attend(q, cache.k[j][:, :, :t + 1], cache.v[j][:, :, :t + 1], causal=False)
            h = h + _lin(Pm, b + "att.out_proj", a)
            h = h + _ff(Pm, b, h)
    cache.t += 1
    return F.linear(_gln(Pm, "final_norm", h[:, 0]), Pm["out_head.weight"])


def greedy_full(Pm, d, vis, steps):
    # full recompute each step -> tokens [B,K], margins [B,K], logits [B,K,V]
    B = vis.shape[0]
    toks = torch.full((B, 1), BOS, dtype=torch.long)
    out_t, out_m, out_l = [], [], []
    for _ in range(steps):
        lg = text_forward(Pm, d, toks, vis)
        top = torch.topk(lg, 2, dim=-1)
        nxt = lg.argmax(-1)
        out_t.append(nxt)
        out_m.append(top.values[:, 0] - top.values[:, 1])
        out_l.append(lg)
        toks = torch.cat([toks, nxt[:, None]], dim=1)
    return torch.stack(out_t, 1), torch.stack(out_m, 1), torch.stack(out_l, 1)


def greedy_kv(Pm, d, vis, steps):
    # KV-cache greedy decode -> tokens [B,K]
    cache = KVCache(Pm, d, vis, steps)
    tok = torch.full((vis.shape[0],), BOS, dtype=torch.long)
    out = []
    for _ in range(steps):
        tok = decode_step(Pm, d, cache, tok).argmax(-1)
        out.append(tok)
    return torch.stack(out, 1)


# -------------------------------------------------------------------- run

def make_pixels(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, 3, 224, 224), generator=g, dtype=torch.float32) * 4.6 - 2.1).contiguous()


def load_images(paths):
    """The published preprocessing (model-spec.md): PIL convert('RGB'),
    torchvision Resize((224, 224)), ToTensor, ImageNet Normalize."""
    from PIL import Image
    import torchvision.transforms as T
    tf = T.Compose([T.Resize((224, 224)), T.ToTensor(),
                    T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    return torch.stack([tf(Image.open(p).convert("RGB")) for p in paths]).contiguous()


def author_filter(logits, temperature, top_k, top_p):
    """The author's sampling filter (load_and_test.ipynb, generate_caption and
    top_k_top_p_filtering), in float32 as it runs there -> probabilities [V]."""
    x = logits[None, :] / max(temperature, 1e-8)
    if top_k > 0:
        values, _ = torch.topk(x, min(top_k, x.size(-1)))
        x = torch.where(x < values[..., -1, None], torch.full_like(x, float("-inf")), x)
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(x, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        mask = cum > top_p
        mask[..., 1:] = mask[..., :-1].clone()
        mask[..., 0] = False
        x = x.scatter(1, sorted_indices, sorted_logits.masked_fill(mask, float("-inf")))
    return F.softmax(x, dim=-1)[0]


# (temperature, top_k, top_p): the published setting first
SAMPLE_SETTINGS = [(0.7, 50, 0.9), (1.0, 0, 0.5), (0.7, 5, 1.0), (1.3, 200, 0.95), (0.0, 50, 0.9)]


def write_sample_cases(out, logits32):
    """The sets of drawable tokens and their probabilities, step by step on
    the greedy prefix of image 0, for several settings; plus rows rounded to
    multiples of 0.5 so that many logits tie at the k-th value (top-p off
    there: where a tie straddles the top-p cut, torch.sort's order decides)."""
    rows = [logits32[0, s] for s in range(logits32.shape[1])]
    rows += [torch.round(r * 2) / 2 for r in rows[:3]]
    cases = []
    for i, row in enumerate(rows):
        for T, k, p in SAMPLE_SETTINGS if i < logits32.shape[1] else [(1.0, 10, 1.0), (0.5, 3, 1.0)]:
            pr = author_filter(row.clone(), T, k, p)
            ids = torch.nonzero(pr > 0).flatten()
            cases.append(dict(row=i, temperature=T, top_k=k, top_p=p, ids=ids.tolist(),
                              probs=[float(x) for x in pr[ids]]))
    _write(os.path.join(out, "sample_in.f32"), torch.stack(rows), "<f4")
    with open(os.path.join(out, "sample_cases.json"), "w") as f:
        json.dump(cases, f)


def _write(path, t, dt):
    np.ascontiguousarray(t.detach().cpu().numpy().astype(dt)).tofile(path)


def cmd_run(a):
    t0 = time.time()
    torch.set_num_threads(a.threads)
    Pm, d = load(a.ckpt, torch.float64)
    if a.steps < 1 or a.steps > d["P"]:
        sys.exit(f"run: --steps {a.steps}: must be in 1..context length {d['P']}")
    if a.images:
        pix = load_images(a.images)
    elif a.pixels:
        pix = torch.from_numpy(np.fromfile(a.pixels, dtype="<f4").copy())
        if pix.numel() % (3 * 224 * 224):
            sys.exit(f"run: {a.pixels}: {pix.numel()} floats is not a multiple of 3*224*224")
        pix = pix.view(-1, 3, 224, 224)
    else:
        pix = make_pixels(a.n_images, a.seed)
    t_load = time.time() - t0
    with torch.inference_mode():
        vis = encode(Pm, d, pix.to(torch.float64))
        t_enc = time.time() - t0 - t_load
        toks, margin, logits = greedy_full(Pm, d, vis, a.steps)
    os.makedirs(a.out, exist_ok=True)
    o = lambda n: os.path.join(a.out, n)
    _write(o("pixels.f32"), pix, "<f4")
    _write(o("vis.f32"), vis, "<f4")
    _write(o("logits0.f32"), logits[:, 0], "<f4")
    _write(o("greedy.i32"), toks, "<i4")
    _write(o("margin.f32"), margin, "<f4")
    _write(o("logits_steps.f32"), logits, "<f4")
    write_sample_cases(a.out, logits.to(torch.float32))
    if a.dtype64:
        _write(o("vis.f64"), vis, "<f8")
        _write(o("logits0.f64"), logits[:, 0], "<f8")
        _write(o("logits_steps.f64"), logits, "<f8")
    meta = dict(n=pix.shape[0], steps=a.steps, latents=d["L"], width=d["C"], vocab=d["V"],
                bos=BOS, ckpt=os.path.abspath(a.ckpt), seed=a.seed,
                pixels=a.images or a.pixels or "torch.rand*4.6-2.1",
                layout="".join(d["layout"]), cross_attention_pos=d["cross_pos"],
                heads=dict(text=d["n_heads"], vision=d["vis_heads"],
                           perceiver=d["p_heads"], perceiver_dim_head=d["p_dim_head"]),
                logits0_std=[round(float(x), 4) for x in logits[:, 0].std(-1)],
                min_margin=round(float(margin.min()), 6),
                greedy=toks.tolist(), f64=bool(a.dtype64),
                seconds=dict(load=round(t_load, 2), encode=round(t_enc, 2),
                             total=round(time.time() - t0, 2)))
    with open(o("meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: meta[k] for k in ("n", "steps", "logits0_std", "min_margin", "greedy", "seconds")}))


# ------------------------------------------------------------------ check

def cmd_check(a):
    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    N, K, L, C, V = (meta[k] for k in ("n", "steps", "latents", "width", "vocab"))
    rd = lambda n, dt: np.fromfile(os.path.join(a.dir, n), dtype=dt)
    vis = rd("vis.f32", "<f4").reshape(N, L, C)
    lg0 = rd("logits0.f32", "<f4").reshape(N, V)
    greedy = rd("greedy.i32", "<i4").reshape(N, K)
    steps = rd("logits_steps.f32", "<f4").reshape(N, K, V)
    fails = 0

    def report(ok, what):
        nonlocal fails
        print(("PASS: " if ok else "FAIL: ") + what)
        fails += not ok

    for i in range(N):
        s = float(lg0[i].std())
        report(np.isfinite(lg0[i]).all() and s > 1, f"image {i}: logits0 finite, std {s:.3f} > 1")
        report(greedy[i, 0] != BOS, f"image {i}: step-0 token {greedy[i, 0]} is not {BOS}")
        report(K < 2 or len(set(greedy[i].tolist())) > 1,
               f"image {i}: greedy tokens vary along steps {greedy[i].tolist()}")
    report(np.array_equal(steps[:, 0], lg0), "logits_steps[:,0] == logits0")
    report(np.array_equal(steps.argmax(-1), greedy), "greedy == argmax(logits_steps)")
    seqs = {tuple(r) for r in greedy.tolist()}
    report(N < 2 or len(seqs) == N, f"greedy sequences differ across all {N} images")
    report(bool(np.isfinite(vis).all()), "visual tokens finite")
    report(float(vis.std()) > 0 and (N < 2 or float(np.abs(vis[1:] - vis[:1]).max()) > 1e-3),
           "visual tokens not all equal, and differ across images")
    sys.exit(1 if fails else 0)


# --------------------------------------------------------------- selftest

def cmd_selftest(a):
    """Cross-check the hand-written math against torch's own modules, so the
    oracle is not only checked against itself."""
    fails = 0

    def report(ok, what):
        nonlocal fails
        print(("PASS: " if ok else "FAIL: ") + what)
        fails += not ok

    for project in (False, True):
        cfg = dict(PRESETS["tiny"])
        if project:
            cfg.update(TINY_PROJECT)
        cross = [2, 5, 8, 11] if project else [3, 6, 9]
        torch.manual_seed(a.seed)
        model = VisionGPT(cfg, cross)
        init_params(model, cfg, cross, a.seed)
        model = model.double().eval()
        Pm, d = build(model.state_dict(), published_config(cfg, cross, "tiny"), torch.float64)
        tag = f"tiny{' --project' if project else ''} cross {cross}"
        with torch.inference_mode():
            pix = make_pixels(2, a.seed).double()
            tv = model.vision.encoder.model       # torchvision's forward, our weights
            x = torch.cat([tv.class_token.expand(2, -1, -1), tv._process_input(pix)], 1)
            e = float((tv.encoder(x)[:, 1:] - vit(Pm, d, pix)).abs().max())
            report(e < 1e-10, f"{tag}: vit() == torchvision VisionTransformer ({e:.2e})")
            vis = encode(Pm, d, pix)
            e = float((vis - _resampler_torch(model, d, pix)).abs().max())
            report(e < 1e-10, f"{tag}: resampler() == nn.LayerNorm/nn.GELU/einsum version ({e:.2e})")
            toks = torch.randint(0, d["V"], (2, 9), generator=torch.Generator().manual_seed(a.seed))
            ref = _text_torch(model, d, toks, vis)
            e = float((text_forward(Pm, d, toks, vis, all_logits=True) - ref).abs().max())
            report(e < 1e-9, f"{tag}: text_forward() == F.layer_norm/F.gelu/nn.MultiheadAttention version ({e:.2e})")
            cache = KVCache(Pm, d, vis, toks.shape[1])
            kv = torch.stack([decode_step(Pm, d, cache, toks[:, t]) for t in range(toks.shape[1])], 1)
            e = float((kv - ref).abs().max())
            report(e < 1e-9, f"{tag}: KV-cache decode == full recompute ({e:.2e})")
    sys.exit(1 if fails else 0)


def _mha_torch(q_in, kv_in, Wq, bq, Wk, bk, Wv, bv, Wo, bo, heads, causal):
    # independent attention: torch's multi_head_attention_forward
    T, S = q_in.shape[1], kv_in.shape[1]
    mask = torch.triu(torch.ones(T, S, dtype=torch.bool), 1) if causal else None
    out, _ = F.multi_head_attention_forward(
        q_in.transpose(0, 1), kv_in.transpose(0, 1), kv_in.transpose(0, 1), q_in.shape[-1], heads,
        None, torch.cat([bq, bk, bv]), None, None, False, 0.0, Wo, bo, training=False, need_weights=False,
        attn_mask=mask, use_separate_proj_weight=True, q_proj_weight=Wq, k_proj_weight=Wk,
        v_proj_weight=Wv)
    return out.transpose(0, 1)


def _resampler_torch(model, d, pix):
    tv = model.vision.encoder.model
    x = torch.cat([tv.class_token.expand(pix.shape[0], -1, -1), tv._process_input(pix)], 1)
    m = tv.encoder(x)[:, 1:]
    if d["project"]:
        m = model.vision.project.proj(m)
    r = model.vision.resampler
    x = r.latents.unsqueeze(0).expand(pix.shape[0], -1, -1)
    for i in range(d["depth"]):
        inner = r.to_q[i].weight.shape[0]
        Wk, Wv = r.to_kv[i].weight[:inner], r.to_kv[i].weight[inner:]
        # torch's MHA wants embed_dim == q width; fold to_q/proj_out in by hand instead
        q = r.to_q[i](r.norms_latent[i](x))
        mm = r.norms_media[i](m)
        k, v = F.linear(mm, Wk), F.linear(mm, Wv)
        H = d["p_heads"]
        a = torch.einsum("bhld,bhnd->bhln", split_heads(q, H), split_heads(k, H)) / math.sqrt(inner // H)
        a = torch.einsum("bhln,bhnd->blhd", a.softmax(-1), split_heads(v, H)).flatten(2)
        x = x + r.proj_out[i](a)
        x = x + r.mlp[i](x)
    return x


def _text_torch(model, d, toks, vis):
    h = model.tok_emb(toks) + model.pos_emb.weight[:toks.shape[1]]
    ln = lambda n, x: F.layer_norm(x, x.shape[-1:], n.scale, n.shift, 1e-5)
    for blk in model.trf_blocks:
        at = blk.att
        ws = (at.W_query.weight, at.W_query.bias, at.W_key.weight, at.W_key.bias,
              at.W_value.weight, at.W_value.bias, at.out_proj.weight, at.out_proj.bias)
        if isinstance(blk, CrossBlock):
            h = h + _mha_torch(ln(blk.attn_norm, h), vis, *ws, d["n_heads"], False)
        else:
            x = ln(blk.norm1, h)
            h = h + _mha_torch(x, x, *ws, d["n_heads"], True)
            f = blk.ff.layers
            h = h + f[2](F.gelu(f[0](ln(blk.norm2, h)), approximate="tanh"))
    return model.out_head(ln(model.final_norm, h))


# ------------------------------------------------------------------ bench

def _timeit(fn, reps, warm=1):
    """Seconds of the fastest of reps runs, as vgpt-bench takes the best of
    its rounds: on a shared host a neighbour's burst costs one run, not the
    figure."""
    for _ in range(warm):
        fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _emit(**kw):
    print(json.dumps(kw), flush=True)


def _tv_encoder(Pm, d):
    """torchvision's own ViT module (its fused MHA path) with these weights."""
    m = torchvision.models.VisionTransformer(224, 16, d["vis_layers"], d["vis_heads"], d["Wv"],
                                             Pm["vision.encoder.model.encoder.layers.encoder_layer_0.mlp.0.weight"].shape[0])
    pre = "vision.encoder.model."
    m.load_state_dict({k[len(pre):]: v for k, v in Pm.items() if k.startswith(pre)})
    m.to(Pm[pre + "conv_proj.weight"].dtype)  # load_state_dict copies into the module's fp32 parameters
    m.eval()

    def enc(pix):
        x = m._process_input(pix)
        x = torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = m.encoder(x)[:, 1:]
        if d["project"]:
            x = F.linear(x, Pm["vision.project.proj.weight"], Pm["vision.project.proj.bias"])
        return resampler(Pm, d, x)
    return enc


def cmd_bench(a):
    """PyTorch's speed in a.dtype: fp32, or bf16 (every weight and activation
    cast to bfloat16, as a user of torch would run it on AMX / AVX512-BF16)."""
    torch.set_num_threads(a.threads)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    Pm, d = load(a.ckpt, dt)
    ntok = a.tokens
    _emit(bench="setup", threads=a.threads, torch=torch.__version__, tokens=ntok, dtype=a.dtype,
          omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), ckpt=a.ckpt)
    with torch.inference_mode():
        pix16 = make_pixels(16, 1).to(dt)
        tv = _tv_encoder(Pm, d)
        diff = float((tv(pix16[:2]) - encode(Pm, d, pix16[:2])).abs().max())
        _emit(bench="encoder_impls_agree", max_abs_diff=diff)
        for impl, fn in (("functional", lambda p: encode(Pm, d, p)), ("torchvision", tv)):
            for b in (1, 8):
                s = _timeit(lambda: fn(pix16[:b]), reps=max(2, 8 // b))
                _emit(bench="encoder", impl=impl, batch=b, images_per_s=round(b / s, 2))
        enc = tv  # the published model's own ViT forward (the faster one here); both reported

        vis16 = encode(Pm, d, pix16)
        full = greedy_full(Pm, d, vis16[:4], ntok)[0]
        kv = greedy_kv(Pm, d, vis16[:4], ntok)
        _emit(bench="kv_vs_full_recompute", images=4, tokens=ntok, match=bool(torch.equal(full, kv)))

        s = _timeit(lambda: greedy_kv(Pm, d, vis16[:1], ntok), reps=3)
        _emit(bench="decoder_kv", batch=1, ms_per_token=round(1000 * s / ntok, 3))
        s = _timeit(lambda: greedy_kv(Pm, d, vis16, ntok), reps=2)
        _emit(bench="decoder_kv", batch=16, tokens_per_s=round(16 * ntok / s, 1))

        s = _timeit(lambda: greedy_kv(Pm, d, enc(pix16[:1]), ntok), reps=3)
        _emit(bench="captions_kv", images=1, batch=1, captions_per_s=round(1 / s, 3))
        pix64 = make_pixels(64, 2).to(dt)

        def stream():
            for i in range(0, 64, 16):
                greedy_kv(Pm, d, enc(pix64[i:i + 16]), ntok)
        s = _timeit(stream, reps=2, warm=0)
        _emit(bench="captions_kv_stream", images=64, batch=16, captions_per_s=round(64 / s, 3))

        if a.quick:
            return

        def published():  # whole model, ViT included, re-run for every token
            toks = torch.full((1, 1), BOS, dtype=torch.long)
            for _ in range(ntok):
                lg = text_forward(Pm, d, toks, enc(pix16[:1]), all_logits=True)[:, -1]
                toks = torch.cat([toks, lg.argmax(-1)[:, None]], dim=1)
        s = _timeit(published, reps=1)
        _emit(bench="published_loop", images=1, s_per_caption=round(s, 3))


# -------------------------------------------------------------------- cli

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mkckpt", help="write a random checkpoint with the published layout")
    m.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    m.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    m.add_argument("--cross", default="3,6,9", help="cross blocks before these transformer blocks")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    m.add_argument("--untied", action="store_true", help="out_head.weight as its own copy")
    m.add_argument("--bare", action="store_true", help="save the state dict alone (older layout)")
    m.add_argument("--minimal", action="store_true", help="save {'model_state_dict'} only (older layout)")
    m.add_argument("--extras", action="store_true", help="add optimizer state, numpy scalars, a custom class")
    m.add_argument("--no-config", action="store_true", help="do not write config.json")
    m.add_argument("--no-tokenizer", action="store_true", help="do not write the tokenizer/ folder")
    m.add_argument("--tied-fp16", action="store_true", help="fp16 by model.half(): head stays tied (older layout)")
    m.add_argument("--pos-rows", type=int, default=0, help="pos_emb rows (default: the preset's, > context)")
    m.add_argument("--project", action="store_true", help="tiny: vision width 48 + vision.project.proj")
    r = sub.add_parser("run", help="float64 reference outputs for a checkpoint")
    r.add_argument("--ckpt", required=True)
    r.add_argument("--n-images", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int, default=8)
    r.add_argument("--out", required=True)
    r.add_argument("--dtype64", action="store_true", help="also write vis/logits0/logits_steps as .f64")
    r.add_argument("--pixels", help="raw <f4 [N,3,224,224] input instead of random pixels")
    r.add_argument("--images", nargs="+", help="image files, preprocessed as published, instead of random pixels")
    r.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    c = sub.add_parser("check", help="assert a run's outputs are non-degenerate")
    c.add_argument("--dir", required=True)
    t = sub.add_parser("selftest", help="cross-check the math against torch's own modules")
    t.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench", help="time PyTorch fp32 on this machine (run with OMP_WAIT_POLICY=PASSIVE)")
    b.add_argument("--ckpt", required=True)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--tokens", type=int, default=20)
    b.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    b.add_argument("--quick", action="store_true", help="skip the whole-model-per-token loop")
    a = ap.parse_args()
    try:
        {"mkckpt": cmd_mkckpt, "run": cmd_run, "check": cmd_check, "selftest": cmd_selftest,
     "bench": cmd_bench}[a.cmd](a)
    except (ValueError, KeyError, OSError) as e:  # one line, naming the input
        sys.exit(f"vgpt_ref.py {a.cmd}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
