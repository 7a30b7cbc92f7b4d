#!/usr/bin/env bash
# bench_archive.sh - issue 14's scale figures: vgpt-cli over archives of
# 10^4, 10^5 and 10^6 input lines (tiny checkpoint, small photos behind
# symbolic links, --max-tokens 2, --output as an archive run writes it),
# with vgpt-cli's own peak RSS (VmHWM), its own CPU time per line (the
# client's overhead, daemons excluded) and the throughput, from the run's
# closing summary.  The target: peak RSS at the largest size within 1.2x
# of the smallest, throughput flat; exit 1 when the memory target is missed.
#   tools/bench_archive.sh [SIZES...]        (default: 10000 100000 1000000)
#   VGPT_BENCH_REAL=10 ...                   every 10th line a photo, the rest
#                                            missing files (tests/scale.sh)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=$root/../shared/testdata/images
sizes=${*:-10000 100000 1000000}
real_every=${VGPT_BENCH_REAL:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/m" "$tmp/img" "$tmp/l"
"$build/vgpt-mkckpt" --preset tiny --seed 3 "$tmp/m/model.pth" > /dev/null 2>&1
/usr/bin/python3 - "$imgs/good" "$tmp/img" <<'PY'
import glob, sys
from PIL import Image
for i, f in enumerate(sorted(glob.glob(sys.argv[1] + "/*"))[:14]):
    im = Image.open(f).convert("RGB"); im.thumbnail((32, 32)); im.save("%s/s%02d.png" % (sys.argv[2], i))
PY
# 1000 distinct paths (symbolic links to the 14 photos), cycled: the list's
# lines look like an archive's (distinct long names), the files are cheap.
for i in $(seq 0 999); do ln -s "../img/s$(printf %02d $((i % 14))).png" "$tmp/l/IMG_$(printf %06d "$i").png"; done
# stdout: one JSON line per size; stderr: a table.
echo "lines  wall_s  lines/s  peak_rss_MiB  own_cpu_us/line" >&2
first=""
for n in $sizes; do
    awk -v n="$n" -v d="$tmp/l" -v every="$real_every" 'BEGIN {
        for (i = 0; i < n; i++)
            if (i % every == 0) printf "%s/IMG_%06d.png\n", d, i % 1000
            else printf "%s/missing/%04d/IMG_%07d.jpg\n", d, i / 1000, i }' > "$tmp/list"
    rm -f "$tmp/out.tsv"
    "$build/vgpt-cli" --model "$tmp/m/model.pth" --greedy --max-tokens 2 --batch 64 --window 256 \
        --cache "$tmp/cache" --progress --progress-interval 100000 --input "$tmp/list" -o "$tmp/out.tsv" \
        2> "$tmp/err" || [ $? = 1 ]
    s=$(grep '^vgpt-cli: done:' "$tmp/err") || { cat "$tmp/err" >&2; exit 2; }
    [ "$(wc -l < "$tmp/out.tsv")" = "$n" ] || { echo "bench_archive: $n lines in, $(wc -l < "$tmp/out.tsv") out" >&2; exit 2; }
    wall=$(echo "$s" | sed -E 's/.*wall ([^,]*),.*/\1/')
    rate=$(echo "$s" | sed -E 's/.* ([0-9.]+) img\/s.*/\1/')
    rss=$(echo "$s" | sed -E 's/.*peak RSS ([0-9.]+) MiB.*/\1/')
    cpu=$(echo "$s" | sed -E 's/.*own CPU ([0-9.]+) us\/line.*/\1/')
    printf '%-7s %-7s %-8s %-13s %s\n' "$n" "$wall" "$rate" "$rss" "$cpu" >&2
    echo "{\"bench\":\"archive\",\"lines\":$n,\"photos_every\":$real_every,\"wall\":\"$wall\",\"lines_per_s\":$rate,\"peak_rss_mib\":$rss,\"own_cpu_us_per_line\":$cpu}"
    [ -n "$first" ] || first=$rss
    last=$rss
done
ratio=$(awk -v a="$last" -v b="$first" 'BEGIN { printf "%.3f", a / b }')
echo "peak RSS, largest vs smallest: ${ratio}x (target: at most 1.2x)" >&2
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.2) }'
