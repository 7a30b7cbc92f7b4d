#!/usr/bin/python3
"""ckpt_cases.py - PyTorch side of the checkpoint reader / writer tests.

Run by tests/ckpt.sh with /usr/bin/python3 (torch 1.13):

  gen DIR             write checkpoints with torch.save plus, for each, a
                      manifest of what the C reader must report (shape,
                      stride, offset, dtype, storage sharing) and the values
                      as raw float32 files; and broken files with the error
                      text the reader must give (errors.txt)
  verify-writer DIR   torch.load the files the C writer produced (written by
                      test_ckpt next to their own manifests and the
                      <stem>.wrapper.json saying what surrounds the state
                      dict) and compare
  verify-mkckpt FILE PRESET DTYPE [--wrapper W] [--pos-rows N] [--no-config]
                      check a vgpt-mkckpt checkpoint against the key layout
                      of model-spec.md, rebuilt here independently, and
                      against the wrapper the training code saves
  manifest DIR STEM   write DIR/STEM.manifest (+ raw values) from torch's view
                      of DIR/STEM.pth and list STEM in DIR/cases.txt, so that
                      test_ckpt checks the C reader's view against torch's
  same-values REF FILE...
                      the vgpt-mkckpt files hold REF's tensors bit for bit
                      (pos_emb: the first rows of the longer one)

Prints PASS:/FAIL: lines; exits non-zero on failure.
"""
import argparse
import collections
import io
import json
import math
import os
import pickletools
import struct
import sys
import zipfile

import numpy as np
import torch

failed = 0


def check(cond, what):
    global failed
    print(("PASS: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failed += 1


DTYPE = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def csv(xs):
    return ",".join(str(x) for x in xs) if len(xs) else "-"


def write_manifest(d, stem, sd, expect_count):
    """One line per tensor: name dtype contiguous offset group raw shape stride."""
    groups, lines = {}, []
    for i, (name, t) in enumerate(sd.items()):
        ptr = t.storage().data_ptr()
        g = groups.setdefault(ptr, len(groups))
        dt = DTYPE.get(t.dtype, "other")
        raw = "-"
        if dt != "other":
            raw = "%s.%d.f32" % (stem, i)
            t.detach().float().contiguous().numpy().astype("<f4").tofile(os.path.join(d, raw))
        lines.append("%s %s %d %d %d %s %s %s" % (name, dt, int(t.is_contiguous()), t.storage_offset(), g, raw,
                                                    csv(t.shape), csv(t.stride())))
    with open(os.path.join(d, stem + ".manifest"), "w") as f:
        f.write("count %d\n" % expect_count)
        f.write("\n".join(lines) + "\n")


class Custom:  # pickled as a __main__ global + NEWOBJ/BUILD; the C reader must not care
    def __init__(self):
        self.x = [1, 2, 3]


def special_f32():
    return torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38, 1e-40])


def special_f16():
    v = [0.0, -0.0, 1.0, 65504.0, -65504.0, 6e-8, 6.1e-5, float("inf"), float("-inf"), float("nan"), 0.333, 1e-6]
    return torch.tensor(v, dtype=torch.float16)


def case_wrapped_fp32(d, g):
    """Wrapped state dict with ties, views, other dtypes and optimizer state around it."""
    sd = collections.OrderedDict()
    emb = torch.randn(10, 4, generator=g)
    sd["tok_emb.weight"] = emb
    sd["lin.weight"] = torch.nn.Parameter(torch.randn(3, 4, generator=g))
    sd["lin.bias"] = torch.randn(3, generator=g)
    base = torch.randn(8, 3, generator=g)
    sd["sliced"] = base[2:5]                       # storage offset 6, contiguous
    sd["cols"] = torch.randn(5, 4, generator=g)[:, 1:3]  # offset 1, stride (4,1)
    sd["transposed"] = torch.randn(3, 5, generator=g).t()  # stride (1,5)
    sd["expanded"] = torch.randn(1, 4, generator=g).expand(3, 4)  # stride (0,1)
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["special"] = special_f32()
    sd["five_d"] = torch.randn(2, 1, 3, 1, 2, generator=g)
    sd["num_batches_tracked"] = torch.tensor(7)    # int64 -> listed as other
    sd["double"] = torch.randn(2, dtype=torch.float64, generator=g)
    sd["out_head.weight"] = emb                    # tied: same storage
    sd["base"] = base                              # shares storage with "sliced"
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    top = {
        "epoch": 5,
        "model_state_dict": sd,
        "optimizer_state_dict": opt.state_dict(),
        "loss": np.float32(1.5),
        "np_array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "config": {"emb_dim": 768, "cross_attention_pos": [3, 6, 9], "lr": 1e-4, "name": "x", "flag": True,
                   "none": None, "neg": -123456789, "big": 2 ** 70, "set": {1, 2}, "bytes": b"\x00\x01"},
        "custom": Custom(),
        "tensor_outside": torch.randn(2),          # not in the state dict: ignored
    }
    torch.save(top, os.path.join(d, "wrapped_fp32.pth"))
    write_manifest(d, "wrapped_fp32", sd, len(sd))


def case_bare_fp16(d, g):
    sd = collections.OrderedDict()
    emb = torch.randn(6, 8, generator=g).half()
    sd["tok_emb.weight"] = emb
    sd["out_head.weight"] = emb.clone()            # untied copy, as in the published fp16 file
    sd["special"] = special_f16()
    sd["transposed"] = torch.randn(4, 3, generator=g).half().t()
    sd["norm.scale"] = torch.ones(8).half()
    torch.save(sd, os.path.join(d, "bare_fp16.pth"))
    write_manifest(d, "bare_fp16", sd, len(sd))


def case_plain_bf16_proto4(d, g):
    """Plain dict, bfloat16, pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL)."""
    sd = {"a.weight": torch.randn(5, 7, generator=g).bfloat16(),
          "a.bias": torch.tensor([1.0, -0.0, float("inf"), 3e38, 1e-39]).bfloat16(),
          "a.view": torch.randn(6, 6, generator=g).bfloat16()[1:4, ::2]}
    torch.save(sd, os.path.join(d, "plain_bf16.pth"), pickle_protocol=4)
    write_manifest(d, "plain_bf16", sd, len(sd))


def rewrite_zip(src, dst, drop=None, replace=None, add=None, method=zipfile.ZIP_STORED):
    """Copies an archive entry by entry (drop / replace / add entries)."""
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", method) as zo:
        for info in zi.infolist():
            if drop and info.filename.endswith(drop):
                continue
            data = zi.read(info.filename)
            if replace and info.filename.endswith(replace[0]):
                data = replace[1](data)
            zo.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zo.writestr(name, data)


def error_cases(d, g):
    errs = []

    def expect(fname, substring):
        errs.append("%s|%s" % (fname, substring))

    p = lambda n: os.path.join(d, n)
    good = p("wrapped_fp32.pth")
    torch.save({"a": torch.ones(1000)}, p("legacy.pth"), _use_new_zipfile_serialization=False)
    with open(p("legacy.pth"), "r+b") as f:  # the legacy stream is read; a cut one is an error
        f.truncate(os.path.getsize(p("legacy.pth")) - 100)
    expect("legacy.pth", "legacy torch.save stream: storage")
    with open(p("notzip.txt"), "w") as f:
        f.write("hello, I am not a checkpoint\n")
    expect("notzip.txt", "not a checkpoint vgpt reads")
    open(p("empty.pth"), "wb").close()
    expect("empty.pth", "empty file")
    with zipfile.ZipFile(good) as z:  # corrupt the first opcode at or after byte 40
        at = next(pos for _, _, pos in pickletools.genops(z.read("wrapped_fp32/data.pkl")) if pos >= 40)
    rewrite_zip(good, p("corrupt_pickle.pth"), replace=("data.pkl", lambda b: b[:at] + b"\xff" + b[at + 1:]))
    expect("corrupt_pickle.pth", "opcode 0xff at offset %d" % at)
    rewrite_zip(good, p("trunc_pickle.pth"), replace=("data.pkl", lambda b: b[: len(b) // 2]))
    expect("trunc_pickle.pth", "truncated")
    rewrite_zip(good, p("missing_storage.pth"), drop="/data/3")
    expect("missing_storage.pth", "missing from the archive")
    rewrite_zip(good, p("small_storage.pth"), replace=("/data/0", lambda b: b[:8]))
    expect("small_storage.pth", "tensor 'tok_emb.weight': storage '0' too small")
    rewrite_zip(good, p("compressed.pth"), method=zipfile.ZIP_DEFLATED)
    expect("compressed.pth", "compressed (method 8)")
    rewrite_zip(good, p("bigendian.pth"), add={"wrapped_fp32/byteorder": b"big"})
    expect("bigendian.pth", "byteorder is 'big'")
    rewrite_zip(good, p("littleendian.pth"), add={"wrapped_fp32/byteorder": b"little"})
    expect("littleendian.pth", "OK")  # opens fine (and misaligned: python's zipfile does not pad)
    torch.save([torch.ones(2)], p("toplist.pth"))
    expect("toplist.pth", "top-level object is a list")
    torch.save({"a": 1, "b": "x"}, p("notensors.pth"))
    expect("notensors.pth", "no tensors found")
    torch.save({"model_state_dict": [torch.ones(1)]}, p("msd_list.pth"))
    expect("msd_list.pth", "'model_state_dict' is a list")
    with zipfile.ZipFile(p("nopickle.pth"), "w") as z:
        z.writestr("foo/bar", b"x")
    expect("nopickle.pth", "data.pkl")
    with open(good, "rb") as f:
        blob = f.read()
    for cut in (3, 64, len(blob) // 2, len(blob) - 40, len(blob) - 1):
        with open(p("trunc_%d.pth" % cut), "wb") as f:
            f.write(blob[:cut])
        expect("trunc_%d.pth" % cut, "")  # any error, no crash
    with open(p("errors.txt"), "w") as f:
        f.write("\n".join(errs) + "\n")


def gen(d):
    g = torch.Generator().manual_seed(1234)
    case_wrapped_fp32(d, g)
    case_bare_fp16(d, g)
    case_plain_bf16_proto4(d, g)
    error_cases(d, g)
    with open(os.path.join(d, "cases.txt"), "w") as f:
        f.write("wrapped_fp32\nbare_fp16\nplain_bf16\n")
    print("PASS: generated checkpoint cases with torch %s" % torch.__version__)


# ---- loading what C wrote ----

TRAINING_KEYS = ["model_state_dict", "config", "epoch", "loss", "model_class"]


def load_cpu(path):
    """torch.load onto the CPU; also returns each storage's saved location, in load order."""
    locs = []
    obj = torch.load(path, map_location=lambda storage, loc: (locs.append(loc), storage)[1])
    return obj, locs


def state_dict_of(obj, wrapper):
    if wrapper == "bare":
        return obj
    return obj.get("model_state_dict") if isinstance(obj, dict) else None


def check_wrapper(what, obj, locs, wrapper, want):
    """What surrounds the state dict: bare, minimal or the training wrapper
    (want: its epoch, loss, model_class and config)."""
    sd = state_dict_of(obj, wrapper)
    check(type(sd) is collections.OrderedDict and len(sd) > 0 and all(isinstance(v, torch.Tensor) for v in sd.values()),
          "%s: %s: the state dict is an OrderedDict of tensors" % (what, wrapper))
    if wrapper == "bare":
        check(set(locs) == {"cpu"}, "%s: bare: every storage saved on 'cpu' (%s)" % (what, sorted(set(locs))))
        return
    if wrapper == "minimal":
        check(list(obj) == ["model_state_dict"] and set(locs) == {"cpu"},
              "%s: minimal: {'model_state_dict'} alone, storages on 'cpu' (%s)" % (what, list(obj)))
        return
    check(type(obj) is dict and list(obj) == TRAINING_KEYS, "%s: training wrapper: a dict of %s in this order%s" %
          (what, ", ".join(TRAINING_KEYS), "" if list(obj) == TRAINING_KEYS else " (got %s)" % list(obj)))
    if not isinstance(sd, dict) or list(obj) != TRAINING_KEYS:
        return
    loss = obj["loss"]
    ok = isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad is True and loss.is_leaf and \
        loss.dtype == torch.float32 and abs(loss.item() - want["loss"]) <= 1e-6 * abs(want["loss"])
    check(ok, "%s: loss is a 0-dim float32 leaf with requires_grad=True, %r (want %r)" %
          (what, loss, want["loss"]))
    sd_ptrs = {t.storage().data_ptr() for t in sd.values()}
    own = isinstance(loss, torch.Tensor) and loss.storage().size() == 1 and loss.storage().data_ptr() not in sd_ptrs
    check(own and len(locs) == len(sd_ptrs) + 1 and locs[-1] == "cuda:0" and set(locs[:-1]) == {"cpu"},
          "%s: loss in its own 1-element storage, the last one, saved on 'cuda:0', state dict on 'cpu' (%s)" %
          (what, collections.Counter(locs)))
    check(type(obj["epoch"]) is int and obj["epoch"] == want["epoch"],
          "%s: epoch %r (want %r)" % (what, obj["epoch"], want["epoch"]))
    check(type(obj["model_class"]) is str and obj["model_class"] == want["model_class"],
          "%s: model_class %r (want %r)" % (what, obj["model_class"], want["model_class"]))
    cfg = obj["config"]
    # json.dumps tells True from 1 from 1.0 and keeps key order; == alone would not
    same = type(cfg) is dict and cfg == want["config"] and json.dumps(cfg) == json.dumps(want["config"])
    check(same, "%s: config equals json.load of the same text (types and key order too)" % what)
    if not same:
        print("  got  %s\n  want %s" % (json.dumps(cfg)[:400], json.dumps(want["config"])[:400]))


# ---- checking what C wrote ----

def read_manifest(path):
    out = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0] == "count":
                continue
            name, dt, contig, off, grp, raw, shape, stride = w
            shp = [] if shape == "-" else [int(x) for x in shape.split(",")]
            out.append((name, dt, int(grp), raw, shp))
    return out


def verify_writer(d):
    for stem in ("cwriter", "cwriter64", "cwriter_bare", "cwriter_train"):
        path = os.path.join(d, stem + ".pth")
        if not os.path.exists(path):
            check(False, "%s exists (written by test_ckpt)" % path)
            continue
        try:
            want = json.load(open(os.path.join(d, stem + ".wrapper.json")))
            obj, locs = load_cpu(path)
        except Exception as e:  # noqa: BLE001 - report anything torch raises
            check(False, "torch.load(%s): %s" % (stem, e))
            continue
        check_wrapper(stem, obj, locs, want["wrapper"], want)
        sd = state_dict_of(obj, want["wrapper"])
        if not isinstance(sd, dict):
            continue
        man = read_manifest(os.path.join(d, stem + ".manifest"))
        check(list(sd.keys()) == [m[0] for m in man], "%s: torch sees the same keys in order" % stem)
        ptr_of_group = {}
        ok_vals = ok_ties = True
        for name, dt, grp, raw, shp in man:
            t = sd.get(name)
            if t is None or DTYPE.get(t.dtype) != dt or list(t.shape) != shp:
                ok_vals = False
                print("  %s: %s" % (name, None if t is None else (t.dtype, tuple(t.shape))))
                continue
            want = np.fromfile(os.path.join(d, raw), dtype="<u4")
            got = t.float().contiguous().numpy().view("<u4").reshape(-1)
            if not np.array_equal(want, got):
                ok_vals = False
                print("  %s: values differ" % name)
            ptr = t.storage().data_ptr()
            if ptr_of_group.setdefault(grp, ptr) != ptr:
                ok_ties = False
        check(ok_vals, "%s: torch.load values, dtypes and shapes equal what C wrote (bitwise)" % stem)
        groups = {m[2] for m in man}
        distinct = len({sd[m[0]].storage().data_ptr() for m in man})
        check(ok_ties and distinct == len(groups), "%s: tied names share one storage in torch, others do not" % stem)
        with zipfile.ZipFile(path) as z:
            check(z.testzip() is None, "%s: zipfile CRC check" % stem)
            names = z.namelist()
            top = names[0].split("/")[0]
            check(z.read(top + "/version") == b"3\n" and z.read(top + "/byteorder") == b"little",
                  "%s: version and byteorder entries" % stem)
            aligned = all(i.compress_type == 0 and
                          (i.header_offset + 30 + len(i.filename.encode()) +
                           struct.unpack("<H", open(path, "rb").read()[i.header_offset + 28:i.header_offset + 30])[0]) % 64 == 0
                          for i in z.infolist() if "/data/" in i.filename)
            check(aligned, "%s: storages stored and 64-byte aligned" % stem)


# ---- vgpt-mkckpt layout ----

POS_ROWS = {"full": 1024, "tiny": 128}  # vgpt-mkckpt's defaults: the published 1024 rows vs context 256
CONTEXT = {"full": 256, "tiny": 32}


def expected_layout(preset, pos_rows):
    ctx = CONTEXT[preset]
    if preset == "full":
        vw, vl, tw, nl, lat, dep, ph, pd, mlp = 768, 12, 768, 12, 64, 2, 8, 64, 256
    else:
        vw, vl, tw, nl, lat, dep, ph, pd, mlp = 64, 2, 64, 12, 8, 2, 2, 16, 32
    V, cross = 50258, (3, 6, 9)
    k = collections.OrderedDict()
    m = "vision.encoder.model."
    k[m + "class_token"] = [1, 1, vw]
    k[m + "conv_proj.weight"] = [vw, 3, 16, 16]
    k[m + "conv_proj.bias"] = [vw]
    k[m + "encoder.pos_embedding"] = [1, 197, vw]
    for i in range(vl):
        p = m + "encoder.layers.encoder_layer_%d." % i
        for n, s in (("ln_1.weight", [vw]), ("ln_1.bias", [vw]),
                     ("self_attention.in_proj_weight", [3 * vw, vw]), ("self_attention.in_proj_bias", [3 * vw]),
                     ("self_attention.out_proj.weight", [vw, vw]), ("self_attention.out_proj.bias", [vw]),
                     ("ln_2.weight", [vw]), ("ln_2.bias", [vw]), ("mlp.0.weight", [4 * vw, vw]),
                     ("mlp.0.bias", [4 * vw]), ("mlp.3.weight", [vw, 4 * vw]), ("mlp.3.bias", [vw])):
            k[p + n] = s
    k[m + "encoder.ln.weight"] = [vw]
    k[m + "encoder.ln.bias"] = [vw]
    k[m + "heads.head.weight"] = [1000, vw]
    k[m + "heads.head.bias"] = [1000]
    r = "vision.resampler."
    k[r + "latents"] = [lat, tw]
    for dd in range(dep):
        k[r + "to_q.%d.weight" % dd] = [ph * pd, tw]
        k[r + "to_kv.%d.weight" % dd] = [2 * ph * pd, tw]
        k[r + "proj_out.%d.weight" % dd] = [tw, ph * pd]
        for n in ("norms_latent", "norms_media"):
            k[r + "%s.%d.weight" % (n, dd)] = [tw]
            k[r + "%s.%d.bias" % (n, dd)] = [tw]
        k[r + "mlp.%d.0.weight" % dd] = [tw]
        k[r + "mlp.%d.0.bias" % dd] = [tw]
        k[r + "mlp.%d.1.weight" % dd] = [mlp, tw]
        k[r + "mlp.%d.1.bias" % dd] = [mlp]
        k[r + "mlp.%d.3.weight" % dd] = [tw, mlp]
        k[r + "mlp.%d.3.bias" % dd] = [tw]
    k["tok_emb.weight"] = [V, tw]
    k["pos_emb.weight"] = [pos_rows, tw]
    j = 0
    for b in range(nl):
        if b in cross:
            p = "trf_blocks.%d." % j
            k[p + "attn_norm.scale"] = [tw]
            k[p + "attn_norm.shift"] = [tw]
            for n in ("W_query", "W_key", "W_value", "out_proj"):
                k[p + "att.%s.weight" % n] = [tw, tw]
                k[p + "att.%s.bias" % n] = [tw]
            j += 1
        p = "trf_blocks.%d." % j
        for n in ("W_query", "W_key", "W_value", "out_proj"):
            k[p + "att.%s.weight" % n] = [tw, tw]
            k[p + "att.%s.bias" % n] = [tw]
        k[p + "att.mask"] = [ctx, ctx]
        k[p + "ff.layers.0.weight"] = [4 * tw, tw]
        k[p + "ff.layers.0.bias"] = [4 * tw]
        k[p + "ff.layers.2.weight"] = [tw, 4 * tw]
        k[p + "ff.layers.2.bias"] = [tw]
        for n in ("norm1", "norm2"):
            k[p + n + ".scale"] = [tw]
            k[p + n + ".shift"] = [tw]
        j += 1
    k["final_norm.scale"] = [tw]
    k["final_norm.shift"] = [tw]
    k["out_head.weight"] = [V, tw]
    return k


def expected_config(preset):
    """The published config.json's keys in its order, then vgpt-mkckpt's own."""
    full = preset == "full"
    c = collections.OrderedDict([
        ("vocab_size", 50258), ("emb_dim", 768 if full else 64), ("context_length", CONTEXT[preset]),
        ("n_heads", 12 if full else 4), ("n_layers", 12), ("drop_rate", 0.1), ("qkv_bias", True),
        ("cross_attention_pos", [3, 6, 9]), ("vision_enabled", True), ("vision_encoder_type", "torchvision_vit_b_16"),
        ("vision_pretrained", True), ("vision_freeze", True), ("perceiver_num_latents", 64 if full else 8),
        ("perceiver_depth", 2), ("perceiver_heads", 8 if full else 2), ("perceiver_dim_head", 64 if full else 16),
        ("weight_decay", 0.01), ("learning_rate", 1e-4)])
    if not full:
        c["vision_num_heads"] = 2
    return c


def check_config(what, cfg, preset):
    exp = expected_config(preset)
    keys = list(exp) + ["vgpt_note"]
    bad = {k: (v, cfg.get(k)) for k, v in exp.items() if json.dumps(cfg.get(k)) != json.dumps(v)}
    check(list(cfg) == keys and not bad and "RANDOM" in str(cfg.get("vgpt_note")),
          "%s: config has the published keys and values in order, + vgpt_note %s" % (what, bad or ""))


def verify_mkckpt(argv):
    ap = argparse.ArgumentParser(prog="ckpt_cases.py verify-mkckpt")
    ap.add_argument("path")
    ap.add_argument("preset", choices=("full", "tiny"))
    ap.add_argument("dtype", choices=("fp32", "fp16"))
    ap.add_argument("--wrapper", default="training", choices=("training", "minimal", "bare"))
    ap.add_argument("--pos-rows", type=int)
    ap.add_argument("--no-config", action="store_true")
    a = ap.parse_args(argv)
    path, preset, dtype = a.path, a.preset, a.dtype
    rows = a.pos_rows or POS_ROWS[preset]
    tag = "mkckpt %s/%s/%s/rows %d" % (preset, dtype, a.wrapper, rows)
    cfg_path = os.path.join(os.path.dirname(path), "config.json")
    obj, locs = load_cpu(path)
    if a.no_config:
        check(not os.path.exists(cfg_path), "%s: --no-config: no %s" % (tag, cfg_path))
        cfg = obj.get("config") if a.wrapper == "training" else None
    else:
        check(os.path.exists(cfg_path), "%s: %s written" % (tag, cfg_path))
        cfg = json.load(open(cfg_path), object_pairs_hook=collections.OrderedDict)
    if cfg is not None:
        check_config(tag, cfg, preset)
    want = {"epoch": 9, "loss": math.log(50258), "model_class": "GPTModal", "config": dict(cfg or {})}
    check_wrapper(tag, obj, locs, a.wrapper, want)
    sd = state_dict_of(obj, a.wrapper)
    if not isinstance(sd, dict):
        return
    want = expected_layout(preset, rows)
    got = {n: list(t.shape) for n, t in sd.items()}
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    wrong = [n for n in want if n in got and got[n] != want[n]]
    for n in (missing + extra + wrong)[:10]:
        print("  %s: want %s got %s" % (n, want.get(n), got.get(n)))
    check(not missing and not extra and not wrong and list(sd) == list(want),
          "%s: %d keys with the model-spec shapes, in order" % (tag, len(want)))
    ctx, prow = list(sd["trf_blocks.0.att.mask"].shape), list(sd["pos_emb.weight"].shape)[:1]
    masks = {tuple(t.shape) for n, t in sd.items() if n.endswith("att.mask")}
    check(prow == [rows] and masks == {(CONTEXT[preset],) * 2} and (cfg is None or cfg["context_length"] == ctx[0]),
          "%s: pos_emb %s rows, every att.mask %s, context_length %s" %
          (tag, prow, sorted(masks), cfg and cfg.get("context_length")))
    tdt = torch.float16 if dtype == "fp16" else torch.float32
    check(all(t.dtype == tdt for t in sd.values()), "%s: every tensor is %s" % (tag, tdt))
    tied = sd["tok_emb.weight"].storage().data_ptr() == sd["out_head.weight"].storage().data_ptr()
    check(tied == (dtype == "fp32") and torch.equal(sd["tok_emb.weight"], sd["out_head.weight"]),
          "%s: out_head %s tok_emb" % (tag, "tied to" if dtype == "fp32" else "a copy of"))
    ptrs = [t.storage().data_ptr() for n, t in sd.items() if n != "out_head.weight"]
    check(len(set(ptrs)) == len(ptrs), "%s: every other tensor has its own storage" % tag)
    f = lambda n: sd[n].float()
    check(bool((f("final_norm.scale") == 4).all() and (f("final_norm.shift") == 0).all()),
          "%s: final_norm scale 4, shift 0" % tag)
    ln = [n for n in sd if n.endswith(("norm1.scale", "ln_1.weight", "norms_media.0.weight", "mlp.0.0.weight"))]
    check(bool(ln) and all((f(n) == 1).all() for n in ln), "%s: LayerNorm scales are 1" % tag)
    biases = [n for n in sd if n.endswith(".bias") or n.endswith(".shift") or n.endswith("in_proj_bias")]
    check(all((f(n) == 0).all() for n in biases), "%s: biases / shifts are 0" % tag)
    w = f("trf_blocks.0.att.W_query.weight")
    check(abs(w.std().item() - 0.02) < 0.003 and abs(w.mean().item()) < 0.003,
          "%s: weights ~ N(0, 0.02) (std %.4f)" % (tag, w.std().item()))
    lat = f("vision.resampler.latents")
    check(abs(lat.std().item() - 1) < 0.3, "%s: latents ~ N(0, 1) (std %.3f)" % (tag, lat.std().item()))
    m = f("trf_blocks.0.att.mask")
    check(torch.equal(m, torch.triu(torch.ones_like(m), diagonal=1)), "%s: causal mask buffer" % tag)


def manifest(d, stem):
    obj, _ = load_cpu(os.path.join(d, stem + ".pth"))
    sd = obj["model_state_dict"] if isinstance(obj, dict) and "model_state_dict" in obj else obj
    write_manifest(d, stem, sd, len(sd))
    with open(os.path.join(d, "cases.txt"), "a") as f:
        f.write(stem + "\n")
    print("PASS: %s: manifest of torch's view (%d tensors) for test_ckpt" % (stem, len(sd)))


def same_values(ref, others):
    short = lambda p: os.path.join(*p.split(os.sep)[-2:])  # mk_NAME/tiny.pth
    sd_of = lambda o: o["model_state_dict"] if isinstance(o, dict) and "model_state_dict" in o else o
    a = sd_of(load_cpu(ref)[0])
    for path in others:
        b = sd_of(load_cpu(path)[0])
        bad = [n for n in a if n != "pos_emb.weight" and (n not in b or not torch.equal(a[n], b[n]))]
        pa, pb = a["pos_emb.weight"], b.get("pos_emb.weight")
        rows = min(pa.shape[0], pb.shape[0]) if pb is not None else 0
        pos_ok = pb is not None and torch.equal(pa[:rows], pb[:rows])
        check(list(a) == list(b) and not bad and pos_ok,
              "%s holds %s's tensors bit for bit, pos_emb's first %d rows too%s" %
              (short(path), short(ref), rows, " (differ: %s)" % bad[:5] if bad else ""))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "verify-writer":
        verify_writer(sys.argv[2])
    elif sys.argv[1] == "verify-mkckpt":
        verify_mkckpt(sys.argv[2:])
    elif sys.argv[1] == "manifest" and len(sys.argv) == 4:
        manifest(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "same-values":
        same_values(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
