#!/usr/bin/env bash
# bench_hf.sh - issue 13's figure: the Hugging Face ViT-GPT2 family's stream
# of captions (batches of 16 images encoded, then 15 greedy tokens each)
# in vgpt against the PyTorch reference (tests/ref/hf_ref.py, KV cache), in
# one run on a full-size random hub folder (model.safetensors, fp32), 2
# threads; vgpt in bf16 too.  Target: >= 3x in fp32.
# The summary also gives the ceiling: the stream's FLOPs at this machine's
# sgemm rate against PyTorch, the most any fp32 engine could gain here.
#   tools/bench_hf.sh [OUT_DIR]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
out=${1:-$root/build/bench}
py=/usr/bin/python3
ref=$root/tests/ref/hf_ref.py
d=$out/hf-full
mkdir -p "$out"
if [ ! -f "$d/.done" ]; then
    echo "bench_hf: writing the full-size random ViT-GPT2 hub folder (PyTorch reference) ..." >&2
    $py "$ref" mkfix --out "$d" --preset full --layout safetensors --eos-bias 11 >&2 && touch "$d/.done"
fi
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), 2 threads" >&2
line=$("$build/vgpt-bench" "$d" 2 fp32 15 | tee /dev/stderr | grep '"captions",.*"images":64,')
vg=$(printf '%s' "$line" | sed 's/.*"captions_per_s":\([0-9.]*\).*/\1/')
fl=$(printf '%s' "$line" | sed 's/.*"floor_captions_per_s":\([0-9.]*\).*/\1/')
echo "{\"bench\":\"hf_captions_stream\",\"impl\":\"vgpt\",\"dtype\":\"fp32\",\"images\":64,\"batch\":16,\"tokens\":15,\"captions_per_s\":$vg}"
tj=$(OMP_WAIT_POLICY=PASSIVE $py "$ref" bench --model "$d" --threads 2 --tokens 15)
echo "$tj"
pt=$(printf '%s' "$tj" | sed 's/.*"captions_per_s": \([0-9.]*\).*/\1/')
vb=$("$build/vgpt-bench" "$d" 2 bf16 15 | grep '"captions",.*"images":64,' | sed 's/.*"captions_per_s":\([0-9.]*\).*/\1/')
echo "{\"bench\":\"hf_captions_stream\",\"impl\":\"vgpt\",\"dtype\":\"bf16\",\"images\":64,\"batch\":16,\"tokens\":15,\"captions_per_s\":$vb}"
# ceiling: the most any fp32 engine could gain on PyTorch here, every
# product at this machine's sgemm rate (vgpt-bench's floor_captions_per_s)
awk -v v="$vg" -v p="$pt" -v b="${vb:-0}" -v f="$fl" 'BEGIN {
    r = v / p
    fmt = "{\"bench\":\"hf_summary\",\"vgpt_fp32_x_torch_fp32\":%.2f,\"target\":3,\"met\":%s,\"ceiling_x_torch_fp32\":%.2f,\"vgpt_x_floor\":%.2f%s}\n"
    printf fmt, r, (r >= 3 ? "true" : "false"), f / p, (v > 0 ? f / v : 0),
        (b > 0 ? sprintf(",\"vgpt_bf16_x_vgpt_fp32\":%.2f", b / v) : "") }'
