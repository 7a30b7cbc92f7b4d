#!/usr/bin/env bash
# model_errors.sh - a checkpoint of the wrong model fails to load with one
# line naming the file, the tensor and what was expected: missing tensor,
# wrong shape, unsupported dtype, config.json disagreeing with the shapes,
# impossible head counts.  Cases are made from a tiny checkpoint with torch.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
py=/usr/bin/python3
if ! $py -c 'import torch' 2>/dev/null; then echo "SKIP: no torch: model error cases not built"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/base"
"$build/vgpt-mkckpt" --preset tiny --seed 9 "$tmp/base/model.pth" >/dev/null 2>&1
$py - "$tmp" <<'PY'
import json, os, shutil, sys, torch
tmp = sys.argv[1]
base = torch.load(f"{tmp}/base/model.pth", map_location="cpu")
sd0 = base["model_state_dict"] if "model_state_dict" in base else base
cfg = json.load(open(f"{tmp}/base/config.json"))
def case(name, edit=None, cfg_edit=None):
    d = f"{tmp}/{name}"; os.makedirs(d, exist_ok=True)
    sd = {k: v.clone() for k, v in sd0.items()}
    if edit: edit(sd)
    torch.save({"model_state_dict": sd}, f"{d}/model.pth")
    c = dict(cfg)
    if cfg_edit: cfg_edit(c)
    json.dump(c, open(f"{d}/config.json", "w"))
case("missing", lambda sd: sd.pop("trf_blocks.5.ff.layers.0.weight"))
case("shape", lambda sd: sd.__setitem__("vision.resampler.to_kv.1.weight", torch.zeros(1000, 64)))
case("dtype", lambda sd: sd.__setitem__("final_norm.scale", sd["final_norm.scale"].double()))
case("config", cfg_edit=lambda c: c.__setitem__("n_layers", 11))
case("heads", cfg_edit=lambda c: c.__setitem__("n_heads", 5))
case("cross", cfg_edit=lambda c: c.__setitem__("cross_attention_pos", [2, 5, 8]))
# the context is the causal mask's size (model-spec.md, pos_emb)
case("ctxcfg", cfg_edit=lambda c: c.__setitem__("context_length", 64))
def masks(sd, P, only=None):
    for k in [k for k in sd if k.endswith(".att.mask")][:only]:
        sd[k] = torch.triu(torch.ones(P, P), diagonal=1)
case("ctxbig", lambda sd: masks(sd, sd["pos_emb.weight"].shape[0] + 1), lambda c: c.pop("context_length"))
case("ctxdisagree", lambda sd: masks(sd, 16, only=1))
case("ctxrows", lambda sd: sd.__setitem__("pos_emb.weight", sd["pos_emb.weight"][:20].clone()),
     lambda c: c.pop("context_length"))
PY
expect() { # expect CASE REGEX DESCRIPTION
    local out rc
    out=$("$build/vgpt-cli" --in-process --model "$tmp/$1/model.pth" < /dev/null 2>&1); rc=$?
    if [ $rc = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -Eq "$2"; then
        echo "PASS: $3: $out"
    else
        echo "FAIL: $3: exit $rc, got: $out"
    fi
}
expect missing "$tmp/missing/model.pth: missing tensor trf_blocks.5.ff.layers.0.weight" "missing tensor"
expect shape "tensor vision.resampler.to_kv.1.weight has shape \[1000,64\], expected \[64,64\]" "wrong shape"
expect dtype "tensor final_norm.scale has dtype .*float32" "unsupported dtype (float64)"
expect config "config.json says n_layers = 11 but the checkpoint's shapes give 12" "config.json disagreeing with the shapes"
expect heads "not divisible into 5 heads" "impossible head count"
expect cross "cross_attention_pos" "cross-attention positions disagreeing"
expect ctxcfg "config.json says context_length = 64 but the causal mask trf_blocks.0.att.mask is \[32,32\]" \
    "config.json context_length disagreeing with the causal mask"
expect ctxbig "the context is 129 tokens \(trf_blocks.0.att.mask\) but pos_emb.weight has only 128 rows" \
    "a context larger than pos_emb"
expect ctxdisagree "is \[32,32\] but trf_blocks.0.att.mask is \[16,16\]: the blocks disagree" "causal masks of different sizes"
expect ctxrows "the context is 32 tokens .* but pos_emb.weight has only 20 rows" "fewer pos_emb rows than the mask"
