#!/usr/bin/env bash
# bench_pipeline.sh - issue 4's figures: end-to-end images/s for 64 images on
# the full-size checkpoint, embedded pipeline vs in-process; the speed-up of
# a rerun that hits the visual-token cache; and the messaging ceiling (tiny
# checkpoint, tiny images: what the pipeline itself costs per image).
#   tools/bench_pipeline.sh FULL_CKPT
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
full=$1
imgs=$root/../shared/testdata/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 64 distinct photos (distinct bytes, so the token cache sees 64 keys): the
# JPEGs at hand, each copy given its own COM segment after SOI (pixels unchanged).
ls "$root"/examples/*.jpg > "$tmp/src"
[ -d "$imgs/good" ] && ls "$imgs"/good/*.jpg >> "$tmp/src"
mapfile -t src < "$tmp/src"
for i in $(seq 1 64); do
    f=${src[$(( (i - 1) % ${#src[@]} ))]}
    { head -c 2 "$f"; printf '\xff\xfe\x00\x06%04d' "$i"; tail -c +3 "$f"; } > "$tmp/img$i.jpg"
    echo "$tmp/img$i.jpg"
done > "$tmp/list64"
flags="--greedy --max-tokens 20 --no-progress --threads 2"
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
tin=$(t "$build/vgpt-cli" --in-process $flags --model "$full" < "$tmp/list64")
tpipe=$(t "$build/vgpt-cli" $flags --no-cache --model "$full" < "$tmp/list64")
thalf=$(t "$build/vgpt-cli" $flags --no-cache --encoder-threads 1 --decoder-threads 1 --model "$full" < "$tmp/list64")
echo "{\"bench\":\"pipeline\",\"images\":64,\"in_process_images_per_s\":$(div 64 "$tin"),\"pipeline_images_per_s\":$(div 64 "$tpipe"),\"pipeline_1_1_threads_images_per_s\":$(div 64 "$thalf")}"
t1=$(t "$build/vgpt-cli" $flags --cache "$tmp/cache" --model "$full" < "$tmp/list64")
t2=$(t "$build/vgpt-cli" $flags --cache "$tmp/cache" --model "$full" < "$tmp/list64")
echo "{\"bench\":\"cache_rerun\",\"images\":64,\"first_s\":$t1,\"rerun_s\":$t2,\"speedup\":$(div "$t1" "$t2")}"
mkdir -p "$tmp/tiny"
"$build/vgpt-mkckpt" --preset tiny --seed 1 "$tmp/tiny/model.pth" > /dev/null 2>&1
printf 'P6\n8 8\n255\n' > "$tmp/small.ppm"; head -c 192 /dev/urandom >> "$tmp/small.ppm"
for i in $(seq 1 2000); do echo "$tmp/small.ppm"; done > "$tmp/list2000"
tm=$(t "$build/vgpt-cli" --greedy --max-tokens 1 --no-progress --no-cache --window 256 --model "$tmp/tiny/model.pth" < "$tmp/list2000")
echo "{\"bench\":\"messaging_ceiling\",\"images\":2000,\"images_per_s\":$(div 2000 "$tm")}"
