#!/usr/bin/env bash
# ckpt.sh - the checkpoint reader / writer against real PyTorch.
#
# 1. tests/ckpt_cases.py (torch via /usr/bin/python3) writes checkpoints with
#    torch.save, their expected values, and broken files, into the cache dir;
# 2. vgpt-mkckpt writes tiny checkpoints in each variant (the training
#    wrapper with 128 pos_emb rows vs a 32 context by default; fp16; --bare;
#    --pos-rows 32; --wrapper minimal --no-config) and torch's view of each
#    becomes a manifest;
# 3. test_ckpt (optimised and, when built, ASan/UBSan) reads all of them and
#    must see what torch sees, and writes cwriter*.pth with the C writer;
# 4. torch.load must read the C writer's files back to the same values, in
#    the wrapper test_ckpt says (bare, minimal, training);
# 5. the vgpt-mkckpt files must match the model-spec key layout and the
#    dict the model author's training code saves, and its options behave.
# Prints SKIP (never PASS) when /usr/bin/python3 has no torch.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
py=/usr/bin/python3
build=${VGPT_BUILD:-$repo/build}
san=${VGPT_SAN_BUILD:-$repo/build-san}
cache=${VGPT_CACHE:-$repo/build/cache}
dir=$cache/ckpt_cases
cases=$here/ckpt_cases.py
mk=$build/vgpt-mkckpt
. "$(dirname "$0")/common.bash"

if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP: checkpoint tests against PyTorch ($py has no torch)"
    exit 0
fi
rm -rf "$dir" && mkdir -p "$dir" || { echo "FAIL: cannot create $dir"; exit 1; }
"$py" "$cases" gen "$dir" || { echo "FAIL: ckpt_cases.py gen $dir"; exit 1; }

# mkvariant NAME ARGS...: $dir/mk_NAME/tiny.pth (seed 7) + its manifest for test_ckpt
made=""
mkvariant() {
    local name=$1 out=$dir/mk_$1/tiny.pth
    shift
    mkdir -p "$(dirname "$out")"
    if ! "$mk" --preset tiny --seed 7 "$@" "$out" > "$dir/mk_$name.log" 2>&1; then
        echo "FAIL: vgpt-mkckpt --preset tiny $*"; cat "$dir/mk_$name.log"; return
    fi
    "$py" "$cases" manifest "$dir" "mk_$name/tiny" || echo "FAIL: manifest of mk_$name/tiny.pth"
    made="$made $name"
}
if [ -x "$mk" ]; then
    mkvariant fp32
    mkvariant fp16 --dtype fp16
    mkvariant bare --bare
    mkvariant rows --pos-rows 32
    mkvariant minimal --wrapper minimal --no-config
else
    echo "FAIL: $mk not built"
fi

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
    "$py" "$cases" verify-writer "$dir" | sed "s/^\(PASS\|FAIL\): /\1: [$tag] /"
    [ "${PIPESTATUS[0]}" -ne 0 ] && echo "FAIL: [$tag] torch.load of the C writer's files"
    ran=1
done
[ "$ran" -eq 1 ] || exit 1
[ -x "$mk" ] || exit 1

# 5. vgpt-mkckpt
for name in $made; do
    case $name in
        fp32) args="tiny fp32" ;;
        fp16) args="tiny fp16" ;;
        bare) args="tiny fp32 --wrapper bare" ;;
        rows) args="tiny fp32 --pos-rows 32" ;;
        minimal) args="tiny fp32 --wrapper minimal --no-config" ;;
    esac
    # shellcheck disable=SC2086 # $args is a word list
    "$py" "$cases" verify-mkckpt "$dir/mk_$name/tiny.pth" $args
done
for dt in fp32 fp16; do
    ok "vgpt-mkckpt $dt warns that the weights are random" "grep -q 'WARNING: writing RANDOM weights' '$dir/mk_$dt.log'"
done
ok "vgpt-mkckpt prints the parameter count without the masks, the pos_emb rows and the context" \
   "grep -q 'wrote .*tiny.pth: 298 tensors, 4.1M parameters (4127976), float32, training wrapper, pos_emb 128 rows, context 32, out_head tied' '$dir/mk_fp32.log'"
# The variants change the wrapping and pos_emb's length, never a value.
"$py" "$cases" same-values "$dir/mk_fp32/tiny.pth" "$dir/mk_bare/tiny.pth" "$dir/mk_rows/tiny.pth" \
    "$dir/mk_minimal/tiny.pth"

"$mk" --preset tiny --seed 7 --cross 1,2 "$dir/mk_x.pth" > /dev/null 2>&1
if "$py" -c "
import torch, sys
sd = torch.load(sys.argv[1], map_location='cpu')['model_state_dict']
cross = sorted({int(k.split('.')[1]) for k in sd if k.endswith('attn_norm.scale')})
sys.exit(0 if cross == [1, 3] and 'trf_blocks.13.ff.layers.0.weight' in sd else 1)" "$dir/mk_x.pth"; then
    echo "PASS: vgpt-mkckpt --cross 1,2 puts cross blocks at list indices 1 and 3"
else
    echo "FAIL: vgpt-mkckpt --cross 1,2 layout"
fi

# bad options: exit 2, a message naming the option, no file left behind
refused() { # refused DESCRIPTION REGEX ARGS...
    local what=$1 re=$2 out rc
    shift 2
    out=$("$mk" "$@" "$dir/bad/bad.pth" 2>&1); rc=$?
    ok "vgpt-mkckpt refuses $what" "[ $rc = 2 ] && printf '%s' \"\$out\" | grep -q -- '$re' && [ ! -e '$dir/bad/bad.pth' ]"
}
mkdir -p "$dir/bad"
refused "--cross 9,3" "--cross: expected increasing" --preset tiny --cross 9,3
refused "--preset huge" "need --preset full|tiny" --preset huge
refused "--pos-rows below the context" "--pos-rows: expected a number from the context (32)" --preset tiny --pos-rows 31
refused "--pos-rows 255 for full (context 256)" "from the context (256)" --preset full --pos-rows 255
refused "--pos-rows abc" "--pos-rows: expected a number" --preset tiny --pos-rows abc
refused "--pos-rows beyond 65536" "--pos-rows: expected a number" --preset tiny --pos-rows 65537
refused "--wrapper foo" "--wrapper: expected training, minimal or bare, got .foo." --preset tiny --wrapper foo
refused "--tied maybe" "--tied: expected yes or no" --preset tiny --tied maybe
refused "--seed -1" "--seed: expected a number" --preset tiny --seed -1
out=$("$mk" --preset tiny --pos-rows 2>&1); rc=$?
ok "vgpt-mkckpt refuses an option without its value" "[ $rc = 2 ] && printf '%s' \"\$out\" | grep -q -- '--pos-rows needs a value'"

"$mk" --help > "$dir/help.txt" 2>&1; rc=$?
ok "vgpt-mkckpt --help exits 0 and documents every option" \
   "[ $rc = 0 ] && for o in --preset --dtype --cross --seed --tied --pos-rows --wrapper --bare --no-config --help; do grep -q -- \"\$o\" '$dir/help.txt' || exit 1; done"
ok "vgpt-mkckpt --help describes the training wrapper and the 1024 vs 256 rows" \
   "grep -q \"'model_class': 'GPTModal'\" '$dir/help.txt' && grep -q 'map_location' '$dir/help.txt' && grep -q '1024' '$dir/help.txt'"
