#!/usr/bin/env bash
# engine.sh - proves the C engine computes the published model: random-weight
# checkpoints are built by the PyTorch reference in the published layout (the
# author's dict with config/epoch/loss/model_class, config.json and tokenizer/
# beside it, pos_emb 4x the context as in the real file, fp16 converted tensor
# by tensor so its head is untied), tiny and full size, fp32 and fp16; older
# layouts (bare or minimal dict, tied fp16, cross blocks at 2,5,8,11, no
# config.json, pos_emb rows == context) are extra cases.  The reference also
# computes visual tokens, logits, greedy tokens (float64) and the author's
# sampling distributions; tool_oracle compares the C engine, and vgpt-cli's
# greedy tokens in-process and through the pipeline are compared on real
# image files.
# Fixtures are cached under $VGPT_CACHE, keyed by the reference's checksum.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
san=${VGPT_SAN_BUILD:-}
py=/usr/bin/python3
ref=$root/tests/ref/vgpt_ref.py
if ! $py -c 'import torch' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 has no torch (apt-get install python3-torch): oracle tests not run"
    exit 0
fi
key=$(cat "$ref" "$(dirname "$ref")/ref_math.py" | md5sum | cut -c1-12)
cache=${VGPT_CACHE:-$root/build/cache}/engine-$key
mkdir -p "$cache"
export OMP_WAIT_POLICY=PASSIVE

# fixture NAME N_IMAGES STEPS MKCKPT_ARGS... : checkpoint + reference run, cached
fixture() {
    local name=$1 n=$2 k=$3; shift 3
    local d=$cache/$name
    if [ ! -f "$d/run/.done" ]; then
        rm -rf "$d"; mkdir -p "$d"
        $py "$ref" mkckpt --out "$d/model.pth" --seed 11 "$@" >"$d/mkckpt.log" 2>&1 &&
        $py "$ref" run --ckpt "$d/model.pth" --n-images "$n" --seed 5 --steps "$k" --out "$d/run" \
            >"$d/run.log" 2>&1 && touch "$d/run/.done" ||
            { echo "FAIL: reference fixture $name could not be built:"; tail -5 "$d"/*.log; return 1; }
    fi
    $py "$ref" check --dir "$d/run" | sed "s/^\(PASS\|FAIL\): /\1: [$name reference] /"
}

oracle() { # oracle NAME [BUILD]
    local name=$1 b=${2:-$build}
    "$b/tests/tool_oracle" "$cache/$name/model.pth" "$cache/$name/run" 1e-4 |
        sed "s/^\(PASS\|FAIL\): /\1: [$name$([ "$b" = "$build" ] || echo ' asan')] /"
}

# pipeline_oracle NAME STEPS: 224x224 PNGs (no resize, so PIL and libvips give
# the same pixels) captioned greedily by vgpt-cli in-process and through the
# embedded pipeline; the tokens must equal the reference's on every decisive
# step (top-2 margin above 1e-4 of the logits' scale), up to the first EOS.
pipeline_oracle() {
    local name=$1 k=$2 d=$cache/$1
    if [ ! -f "$d/run-img/.done" ]; then
        mkdir -p "$d/img"
        $py -c '
import sys, numpy as np
from PIL import Image
g = np.random.default_rng(7)
for i in range(3):
    Image.fromarray(g.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/img{i}.png")
' "$d/img" && $py "$ref" run --ckpt "$d/model.pth" --images "$d"/img/img*.png --steps "$k" --out "$d/run-img" \
            >"$d/run-img.log" 2>&1 && touch "$d/run-img/.done" ||
            { echo "FAIL: [$name] reference run on image files:"; tail -5 "$d/run-img.log"; return 1; }
    fi
    ls "$d"/img/img*.png > "$d/list"
    for mode in --in-process ""; do
        "$build/vgpt-cli" $mode --no-cache --greedy --max-tokens "$k" --format jsonl --no-progress \
            --model "$d/model.pth" < "$d/list" > "$d/cli.jsonl" 2>"$d/cli.err"
        $py "$root/tests/ref/greedy_check.py" "$d/run-img" "$d/cli.jsonl" "$name ${mode:-pipeline}"
    done
}

# the published layout
fixture tiny-fp32-pub 3 10 --preset tiny --dtype fp32 && oracle tiny-fp32-pub && pipeline_oracle tiny-fp32-pub 10
fixture tiny-fp16-pub 3 10 --preset tiny --dtype fp16 && oracle tiny-fp16-pub && pipeline_oracle tiny-fp16-pub 10
# older layouts
fixture tiny-fp32-2581-bare 3 10 --preset tiny --dtype fp32 --cross 2,5,8,11 --bare --untied --pos-rows 32 \
    --no-tokenizer && oracle tiny-fp32-2581-bare
fixture tiny-fp16-2581-tied-minimal 3 10 --preset tiny --dtype fp16 --cross 2,5,8,11 --tied-fp16 --minimal --extras &&
    oracle tiny-fp16-2581-tied-minimal
fixture tiny-fp32-extras 3 10 --preset tiny --dtype fp32 --extras && oracle tiny-fp32-extras
fixture tiny-project 2 8 --preset tiny --dtype fp32 --cross 3,6,9 --project && oracle tiny-project
# One build for every x86-64 host: the fallback kernels are run, not assumed.
# VGPT_ISA forces a path (tool_oracle checks it took effect); the 1e-4 bound
# holds on each.  The pipeline inherits it (the daemons read it too).
for isa in generic avx2; do
    VGPT_ISA=$isa oracle tiny-fp32-pub | sed "s/^\(PASS\|FAIL\): \[/\1: [$isa /"
    VGPT_ISA=$isa oracle tiny-fp16-pub | sed "s/^\(PASS\|FAIL\): \[/\1: [$isa /"
done
VGPT_ISA=generic pipeline_oracle tiny-fp32-pub 10 | sed "s/^\(PASS\|FAIL\): \[/\1: [generic /"

# --precision bf16: measured against the fp32 reference (tool_oracle
# --fidelity), judged against bf16's bounds: visual tokens and logits within
# a few percent of their scale, the top token equal on >= 99% of the steps
# whose reference top-2 margin exceeds 0.1; and an image's bf16 tokens and
# cross K/V its own, bit for bit, whatever its batch-mates
# (vgpt_precision_images_per_pass).  `make bench` reports the same figures
# on the full-size checkpoints.
fidelity() { # fidelity NAME
    local out
    out=$("$build/tests/tool_oracle" "$cache/$1/model.pth" "$cache/$1/run" --fidelity bf16 2>&1)
    $py - "$1" "$out" <<'PY'
import json, sys
name, out = sys.argv[1], sys.argv[2]
try:
    f = json.loads(out.strip().splitlines()[-1])
except Exception:
    print(f"FAIL: [{name} bf16] no fidelity figures: {out[-300:]}"); sys.exit(0)
ok = f["vis_rel_err"] <= 0.1 and f["logits_rel_err"] <= 0.05 and f["decisive_steps"] > 0 and f["agreement"] >= 0.99
print(("PASS" if ok else "FAIL") + f": [{name} bf16] visual tokens rel err {f['vis_rel_err']:.3g} <= 0.1, logits "
      f"{f['logits_rel_err']:.3g} <= 0.05, top token agrees on {f['agree']}/{f['decisive_steps']} decisive steps (>= 99%)")
print(("PASS" if f["alone_identical"] else "FAIL") + f": [{name} bf16] the batch's last image, encoded alone, "
      f"gets the batch's visual tokens and cross K/V bit for bit ({f['images']} images)")
PY
}
# On every host: oneDNN's products where it has bf16 (AVX-512), vgpt's own
# elsewhere; VGPT_ISA=generic forces vgpt's own, on the plain C kernels
# (OpenBLAS's sgemm for the encoder's products).
fidelity tiny-fp32-pub
fidelity tiny-fp16-pub
VGPT_ISA=generic fidelity tiny-fp32-pub | sed "s/^\(PASS\|FAIL\): \[/\1: [generic /"
# AVX2's many-row products (rows_bf16), on AVX-512 hosts too
VGPT_ISA=avx2 fidelity tiny-fp32-pub | sed "s/^\(PASS\|FAIL\): \[/\1: [avx2 /"

if [ -n "$san" ] && [ -x "$san/tests/tool_oracle" ]; then
    ASAN_OPTIONS=detect_leaks=1 oracle tiny-fp32-pub "$san"
    ASAN_OPTIONS=detect_leaks=1 "$san/tests/tool_decode" "$cache/tiny-fp32-pub/model.pth" | sed 's/^\(PASS\|FAIL\): /\1: [asan] /'
fi
"$build/tests/tool_decode" "$cache/tiny-fp16-pub/model.pth"

if [ "${VGPT_SKIP_FULL:-0}" = 1 ]; then
    echo "SKIP: full-size oracle (VGPT_SKIP_FULL=1)"
else
    fixture full-fp32-pub 2 6 --preset full --dtype fp32 && oracle full-fp32-pub && pipeline_oracle full-fp32-pub 6
    fixture full-fp16-pub 2 6 --preset full --dtype fp16 && oracle full-fp16-pub && pipeline_oracle full-fp16-pub 6
    VGPT_ISA=generic oracle full-fp32-pub | sed "s/^\(PASS\|FAIL\): \[/\1: [generic /"
    fidelity full-fp32-pub
    fidelity full-fp16-pub
    # no config.json: the context comes from the 256x256 masks, not the 1024 pos_emb rows
    fixture full-fp32-noconfig 1 4 --preset full --dtype fp32 --no-config --no-tokenizer && oracle full-fp32-noconfig
fi
