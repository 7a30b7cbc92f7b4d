#!/usr/bin/env bash
# engine.sh - proves the C engine computes the published model: random-weight
# checkpoints in the published layout (tiny and full size, fp32 and fp16,
# cross blocks at 3,6,9 and 2,5,8,11, tied and untied head, wrapped and bare)
# are built by the PyTorch reference, which also computes visual tokens,
# logits and greedy tokens in float64; tool_oracle compares the C engine.
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
key=$(cat "$ref" | md5sum | cut -c1-12)
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

fixture tiny-fp32-369 3 10 --preset tiny --dtype fp32 --cross 3,6,9 --extras && oracle tiny-fp32-369
fixture tiny-fp16-369 3 10 --preset tiny --dtype fp16 --cross 3,6,9 && oracle tiny-fp16-369
fixture tiny-fp32-2581-bare 3 10 --preset tiny --dtype fp32 --cross 2,5,8,11 --bare --untied && oracle tiny-fp32-2581-bare
fixture tiny-fp16-2581-untied 3 10 --preset tiny --dtype fp16 --cross 2,5,8,11 --untied --extras && oracle tiny-fp16-2581-untied
fixture tiny-project 2 8 --preset tiny --dtype fp32 --cross 3,6,9 --project && oracle tiny-project
if [ -n "$san" ] && [ -x "$san/tests/tool_oracle" ]; then
    ASAN_OPTIONS=detect_leaks=1 oracle tiny-fp32-369 "$san"
    ASAN_OPTIONS=detect_leaks=1 "$san/tests/tool_decode" "$cache/tiny-fp32-369/model.pth" | sed 's/^\(PASS\|FAIL\): /\1: [asan] /'
fi
"$build/tests/tool_decode" "$cache/tiny-fp16-369/model.pth"

if [ "${VGPT_SKIP_FULL:-0}" = 1 ]; then
    echo "SKIP: full-size oracle (VGPT_SKIP_FULL=1)"
else
    fixture full-fp32-369 2 6 --preset full --dtype fp32 --cross 3,6,9 --extras && oracle full-fp32-369
    fixture full-fp16-369-untied 2 6 --preset full --dtype fp16 --cross 3,6,9 --untied --no-config &&
        oracle full-fp16-369-untied
fi
