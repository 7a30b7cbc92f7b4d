#!/usr/bin/env bash
# bench_image.sh - how long preprocd takes on a big photo, exact (the
# published PIL pixels) vs --fast-decode (JPEG shrink-on-load), and how far
# apart their pixels are.  Makes a ~12 MP JPEG from a test photo in the
# cache dir.  Times are whole `preprocd --once` processes; the start-up cost
# (measured on a 1x1 image) is printed so it can be subtracted.
#   tools/bench_image.sh [RUNS]      (default 10)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
bin=$build/preprocd
[ -f "$bin" ] || bin=$build/bin/preprocd
images=${VGPT_SHARED:-$root/../shared}/testdata/images
cache=${VGPT_CACHE:-$root/build/cache}
runs=${1:-10}
[ -x "$bin" ] || { echo "bench_image: $bin not built (run make)" >&2; exit 1; }
mkdir -p "$cache"

big=$cache/bench_12mp_4000x3000.jpg
if [ ! -s "$big" ]; then
    src=$images/good/Kleiber_by_Lukas_Baubkus_4000px.jpg    # 4000x2250
    if command -v vips >/dev/null; then
        vips resize "$src" "$big[Q=90]" 1 --vscale 1.3333334
    else
        /usr/bin/python3 -c "import sys; from PIL import Image; \
Image.open(sys.argv[1]).resize((4000, 3000), Image.LANCZOS).save(sys.argv[2], quality=90)" "$src" "$big"
    fi
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# ms_per_image FILE ARGS...: mean wall time of `preprocd --once FILE ARGS` over $runs runs
ms_per_image() {
    local f=$1; shift
    "$bin" --once "$f" "$@" >/dev/null            # warm the page cache
    local t0; t0=$(now_ms)
    for _ in $(seq "$runs"); do "$bin" --once "$f" "$@" >/dev/null; done
    echo "scale=1; ($(now_ms) - $t0) / $runs" | bc
}
maxdiff() {  # max |a-b| over the bytes of two files, and how many bytes differ
    paste <(od -An -v -tu1 -w1 "$1") <(od -An -v -tu1 -w1 "$2") |
        awk '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; if (d) n++}
             END {printf "%d (%d of %d bytes differ)", m, n, NR}'
}

dims=$(vipsheader "$big" 2>/dev/null | sed 's/.*: \([0-9]*x[0-9]*\) .*/\1/' || echo "?")
echo "image: $big ($dims, $(( $(stat -c %s "$big") / 1024 )) KiB), $runs runs each, $(nproc) cores"
echo "start-up (1x1 JPEG):  $(ms_per_image "$images/variants/tiny_1x1.jpg") ms"
echo "exact:                $(ms_per_image "$big") ms per image"
echo "--fast-decode:        $(ms_per_image "$big" --fast-decode) ms per image"
"$bin" --once "$big" >"$cache/bench_exact.rgb"
"$bin" --once "$big" --fast-decode >"$cache/bench_fast.rgb"
echo "max pixel difference fast vs exact: $(maxdiff "$cache/bench_exact.rgb" "$cache/bench_fast.rgb")"
