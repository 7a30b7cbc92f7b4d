#!/usr/bin/env bash
# ckpt.sh - the checkpoint reader / writer against real PyTorch.
#
# 1. tests/ckpt_cases.py (torch via /usr/bin/python3) writes checkpoints with
#    torch.save, their expected values, and broken files, into the cache dir;
# 2. test_ckpt (optimised and, when built, ASan/UBSan) reads them and writes
#    cwriter*.pth with the C writer;
# 3. torch.load must read the C writer's files back to the same values;
# 4. vgpt-mkckpt tiny fp32 / fp16 must match the model-spec key layout.
# Prints SKIP (never PASS) when /usr/bin/python3 has no torch.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
py=/usr/bin/python3
build=${VGPT_BUILD:-$repo/build}
san=${VGPT_SAN_BUILD:-$repo/build-san}
cache=${VGPT_CACHE:-$repo/build/cache}
dir=$cache/ckpt_cases

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP: checkpoint tests against PyTorch ($py has no torch)"
    exit 0
fi
rm -rf "$dir" && mkdir -p "$dir" || { echo "FAIL: cannot create $dir"; exit 1; }
"$py" "$here/ckpt_cases.py" gen "$dir" || { echo "FAIL: ckpt_cases.py gen $dir"; exit 1; }

ran=0
for b in "$build" "$san"; do
    bin=$b/tests/test_ckpt
    if [ ! -x "$bin" ]; then
        [ "$b" = "$build" ] && echo "FAIL: $bin not built (make $bin)"
        [ "$b" = "$san" ] && echo "SKIP: $bin not built (sanitizer run)"
        continue
    fi
    tag=$(basename "$b")
    "$bin" "$dir" > "$dir/test_ckpt.$tag.log" 2>&1
    rc=$?
    sed "s/^\(PASS\|FAIL\|SKIP\): /\1: [$tag] /" "$dir/test_ckpt.$tag.log" | grep -E '^(PASS|FAIL|SKIP):'
    grep -E '^(ERROR|==[0-9]+==|.*runtime error)' "$dir/test_ckpt.$tag.log" | head -20
    [ "$rc" -ne 0 ] && echo "FAIL: [$tag] test_ckpt $dir exited $rc"
    "$py" "$here/ckpt_cases.py" verify-writer "$dir" | sed "s/^\(PASS\|FAIL\): /\1: [$tag] /"
    [ "${PIPESTATUS[0]}" -ne 0 ] && echo "FAIL: [$tag] torch.load of the C writer's files"
    ran=1
done
[ "$ran" -eq 1 ] || exit 1

mk=$build/vgpt-mkckpt
if [ ! -x "$mk" ]; then
    echo "FAIL: $mk not built"
    exit 1
fi
for dt in fp32 fp16; do
    out=$dir/mk_$dt/tiny.pth
    mkdir -p "$(dirname "$out")"
    if ! "$mk" --preset tiny --dtype "$dt" --seed 7 "$out" > "$dir/mk_$dt.log" 2>&1; then
        echo "FAIL: vgpt-mkckpt --preset tiny --dtype $dt"; cat "$dir/mk_$dt.log"; continue
    fi
    if grep -q 'WARNING: writing RANDOM weights' "$dir/mk_$dt.log"; then
        echo "PASS: vgpt-mkckpt $dt warns that the weights are random"
    else
        echo "FAIL: vgpt-mkckpt $dt printed no random-weights warning"
    fi
    "$py" "$here/ckpt_cases.py" verify-mkckpt "$out" tiny "$dt"
done
"$mk" --preset tiny --seed 7 --cross 1,2 "$dir/mk_x.pth" > /dev/null 2>&1
if "$py" -c "
import torch, sys
sd = torch.load(sys.argv[1])['model_state_dict']
cross = sorted({int(k.split('.')[1]) for k in sd if k.endswith('attn_norm.scale')})
sys.exit(0 if cross == [1, 3] and 'trf_blocks.13.ff.layers.0.weight' in sd else 1)" "$dir/mk_x.pth"; then
    echo "PASS: vgpt-mkckpt --cross 1,2 puts cross blocks at list indices 1 and 3"
else
    echo "FAIL: vgpt-mkckpt --cross 1,2 layout"
fi
if "$mk" --preset tiny --cross 9,3 "$dir/bad.pth" > /dev/null 2>&1 || "$mk" --preset huge "$dir/bad.pth" > /dev/null 2>&1; then
    echo "FAIL: vgpt-mkckpt accepted bad options"
else
    echo "PASS: vgpt-mkckpt rejects bad options"
fi
