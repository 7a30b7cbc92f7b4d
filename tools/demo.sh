#!/usr/bin/env bash
# demo.sh - caption the example images with vgpt-cli (in-process mode).
# Uses $VGPT_MODEL, or models/model_fp32/model_checkpoint.pth, or
# models/model_fp16/model_checkpoint.pth; with none of those it writes a
# RANDOM-WEIGHT checkpoint in the published layout (captions are meaningless,
# but every part of the engine runs at full size).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
model=${VGPT_MODEL:-}
for c in "$root/models/model_fp32/model_checkpoint.pth" "$root/models/model_fp16/model_checkpoint.pth"; do
    [ -z "$model" ] && [ -f "$c" ] && model=$c
done
if [ -z "$model" ]; then
    model=$root/build/demo/random-full/model_checkpoint.pth
    if [ ! -f "$model" ]; then
        mkdir -p "$(dirname "$model")"
        "$build/vgpt-mkckpt" --preset full --seed 1 "$model"
    fi
    cat >&2 <<MSG
================================================================================
 vgpt demo: no real checkpoint found, using RANDOM WEIGHTS ($model).
 The captions below are meaningless word salad; speed and plumbing are real.
 For real captions download gurumurthy3/vision-gpt-flickr8k_v2
 (model_fp32/model_checkpoint.pth) and run: VGPT_MODEL=/path/to/it make demo
================================================================================
MSG
fi
list=$(mktemp)
trap 'rm -f "$list"' EXIT
ls "$root"/examples/*.png "$root"/examples/*.jpg > "$list"
shared=$root/../shared/testdata/images
[ -d "$shared/good" ] && ls "$shared"/good/* >> "$list"
[ -d "$shared/bad" ] && echo "$shared/bad/truncated_40pct.jpg" >> "$list"  # shows a clean error line
echo "vgpt demo: captioning $(wc -l < "$list") images with $model" >&2
rc=0
"$build/vgpt-cli" --model "$model" --progress < "$list" || rc=$?
echo "vgpt demo: vgpt-cli exited $rc (0 = all captioned, 1 = some lines are errors)" >&2
[ "$rc" -le 1 ]
