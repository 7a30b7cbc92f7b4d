#!/usr/bin/env bash
# bench.sh - `make bench`: the engine's speed and memory on the full-size
# random checkpoint with 2 threads, next to PyTorch measured in the same run.
# Results: stdout and build/bench/results.jsonl.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
out=$root/build/bench
mkdir -p "$out"
res=$out/results.jsonl
: > "$res"
# PyTorch's OpenMP threads must not spin on the cores the other side of a
# comparison runs on; vgpt's own programs set their policy (kernels.h).
torch_env() { OMP_WAIT_POLICY=PASSIVE "$@"; }
# full_ckpt DTYPE: the full-size random checkpoint in the published layout, written once.
full_ckpt() {
    local d=$out/full-$1
    if [ ! -f "$d/model.pth" ]; then
        echo "bench: writing the full-size random $1 checkpoint (PyTorch reference) ..." >&2
        /usr/bin/python3 "$root/tests/ref/vgpt_ref.py" mkckpt --preset full --dtype "$1" --cross 3,6,9 --seed 1 \
            --out "$d/model.pth" >&2
    fi
}
full_ckpt fp32
full_ckpt fp16
ckdir=$out/full-fp32 ck16=$out/full-fp16
echo "== vgpt engine (C, OpenBLAS, 2 threads)" >&2
"$build/vgpt-bench" "$ckdir/model.pth" 2 | tee -a "$res"

echo "== peak memory of vgpt-cli --in-process (fp32 checkpoint)" >&2
list=$(mktemp)
ls "$root"/examples/* | grep -E '\.(png|jpg)$' > "$list"
size=$(stat -c %s "$ckdir/model.pth")
/usr/bin/time -f '%M %e' -o "$out/time.txt" "$build/vgpt-cli" --in-process --model "$ckdir/model.pth" --threads 2 \
    --greedy --max-tokens 20 < "$list" > /dev/null
read -r rss_kb secs < "$out/time.txt"
echo "{\"bench\":\"memory\",\"peak_rss_mb\":$((rss_kb / 1024)),\"checkpoint_mb\":$((size / 1048576)),\"x_checkpoint\":$(awk "BEGIN{printf \"%.2f\", $rss_kb*1024/$size}"),\"wall_s\":$secs}" | tee -a "$res"
rm -f "$list"

echo "== PyTorch reference (Debian torch, fp32, 2 threads, OMP_WAIT_POLICY=PASSIVE)" >&2
torch_env /usr/bin/python3 "$root/tests/ref/vgpt_ref.py" bench --ckpt "$ckdir/model.pth" --threads 2 | tee -a "$res"
echo "== pipeline (issue 4)" >&2
"$root/tools/bench_pipeline.sh" "$ckdir/model.pth" | tee -a "$res"
if [ -x "$root/tools/bench_image.sh" ]; then
    echo "== image preprocessing" >&2
    "$root/tools/bench_image.sh" | tee -a "$res"
    big=${VGPT_CACHE:-$root/build/cache}/bench_12mp_4000x3000.jpg
    "$build/preprocd" --once "$big" > "$out/exact.rgb" && "$build/preprocd" --once "$big" --fast-decode > "$out/fast.rgb" &&
        "$build/tests/tool_fastdiff" "$ckdir/model.pth" "$out/exact.rgb" "$out/fast.rgb" | tee -a "$res"
fi
echo "== bf16 (issue 12)" >&2
"$root/tools/bench_bf16.sh" "$ckdir/model.pth" "$ck16/model.pth" "$out" | tee -a "$res"
echo "== Hugging Face ViT-GPT2 family (issue 13)" >&2; "$root/tools/bench_hf.sh" "$out" | tee -a "$res"
echo "== archive scale: 10^4/10^5/10^6 lines (issue 14)" >&2; "$root/tools/bench_archive.sh" | tee -a "$res"
echo "bench: results in $res" >&2
