#!/usr/bin/env bash
# image.sh - `preprocd --once` end to end: output size, exit codes (0 ok,
# 1 bad input, 2 usage error), one-line errors naming the file, and that the
# options reach the decoder.  Runs every preprocd build it finds
# ($VGPT_BUILD, $VGPT_SAN_BUILD, default <repo>/build).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
images=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

if [ ! -f "$images/MANIFEST.tsv" ]; then
    echo "SKIP: no test images at $images (set VGPT_SHARED)"
    exit 0
fi
builds=()
for b in "${VGPT_BUILD:-$root/build}" ${VGPT_SAN_BUILD:+"$VGPT_SAN_BUILD"}; do
    found=
    for p in "$b/preprocd" "$b/bin/preprocd"; do
        if [ -f "$p" ] && [ -x "$p" ]; then found=$p; break; fi
    done
    if [ -n "$found" ]; then builds+=("$found"); else fail "$b/preprocd not built"; fi
done

# run NAME ARGS...: exit code in $rc, stdout in $tmp/out, stderr in $tmp/err
run() { "$P" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
size() { stat -c %s "$1"; }
one_line_naming() { [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$1" "$tmp/err"; }
input_error() { [ "$rc" -eq 1 ] && [ "$(size "$tmp/out")" -eq 0 ] && one_line_naming "$1"; }
usage_error() { [ "$rc" -eq 2 ] && grep -q -- "--help" "$tmp/err"; }
help_ok() {
    [ "$rc" -eq 0 ] && grep -q SYNOPSIS "$tmp/out" || return 1
    for o in --once --no-autorotate --fast-decode --accept-truncated --max-pixels; do
        grep -q -- "$o" "$tmp/out" || return 1
    done
}

for P in "${builds[@]}"; do
    tag=${P#"$root"/}
    run --once "$images/good/rocket.jpg"
    check "$tag: rocket.jpg -> exit 0, 150528 bytes (rc=$rc, $(size "$tmp/out") bytes)" \
        test "$rc" -eq 0 -a "$(size "$tmp/out")" -eq 150528
    cp "$tmp/out" "$tmp/rocket"

    uni="$images/bad/photo with spaces – café 日本 📷.jpg"
    run --once "$uni"
    cp "$tmp/out" "$tmp/uni"
    run --once "$images/variants/jpeg_icc_adobergb.jpg"
    check "$tag: unicode/space path decodes to the same pixels as its twin" \
        cmp -s "$tmp/uni" "$tmp/out"

    run --once "$images/variants/jpeg_exif_orientation6.jpg"
    cp "$tmp/out" "$tmp/rot"
    run --once "$images/variants/jpeg_exif_orientation6.jpg" --no-autorotate
    check "$tag: --no-autorotate changes an orientation-6 image" \
        test "$rc" -eq 0 -a "$(size "$tmp/out")" -eq 150528 -a -n "$(cmp "$tmp/rot" "$tmp/out")"

    run --once "$images/good/Kleiber_by_Lukas_Baubkus_4000px.jpg" --fast-decode
    cp "$tmp/out" "$tmp/fast"
    run --once "$images/good/Kleiber_by_Lukas_Baubkus_4000px.jpg"
    check "$tag: --fast-decode gives 150528 bytes that differ from the exact decode" \
        test "$(size "$tmp/fast")" -eq 150528 -a -n "$(cmp "$tmp/fast" "$tmp/out")"

    for f in bad/empty.jpg bad/random_bytes.jpg bad/truncated_40pct.jpg bad/directory.jpg \
             bad/bomb_65000x65000.jpg bad/text_file.png does-not-exist.jpg; do
        run --once "$images/$f"
        check "$tag: $f -> exit 1, no stdout, one stderr line naming it (rc=$rc: $(head -c 160 "$tmp/err"))" \
            input_error "$images/$f"
    done

    run --once "$images/good/rocket.jpg" --max-pixels 1000
    check "$tag: --max-pixels 1000 refuses a 640x427 image (rc=$rc)" \
        grep -q max_pixels "$tmp/err"
    run --once "$images/bad/truncated_40pct.jpg" --accept-truncated
    check "$tag: --accept-truncated decodes a truncated JPEG (rc=$rc)" \
        test "$rc" -eq 0 -a "$(size "$tmp/out")" -eq 150528

    for args in "" "--bogus" "--once" "--max-pixels 0 --once x.jpg" "--max-pixels=abc --once x.jpg" \
                "--once a.jpg --once b.jpg" "--fast-decode=1 --once x.jpg"; do
        # shellcheck disable=SC2086
        run $args
        check "$tag: usage error '$args' -> exit 2 with a hint (rc=$rc)" \
            usage_error
    done
    run --help
    check "$tag: --help exits 0 and documents every option" help_ok
done

# Oracle: PIL itself on formats and sizes the corpus lacks (made at test time
# in the cache): 24 sizes from 1x1 to 4000x50 (lossless PNG, so only the
# resize is tested), GIF transparency, palette tRNS, 1/2/4-bit gray, LA,
# 16-bit gray, TIFF gray/RGBA/CMYK, BMP 1/8/32-bit, PPM/PGM, WebP alpha and
# animation.  Needs Debian's /usr/bin/python3 with PIL and numpy.
if [ ${#builds[@]} -gt 0 ] && /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
    oracle=${VGPT_CACHE:-$root/build/cache}/image_oracle
    mkdir -p "$oracle"
    /usr/bin/python3 - "${builds[0]}" "$oracle" "$images/good/chelsea_cat.png" <<'PY'
import random, subprocess, sys
import numpy as np
from PIL import Image
binary, out, photo = sys.argv[1:4]
src = Image.open(photo).convert('RGB')
files = []
def save(im, name, **kw):
    im.save(f'{out}/{name}', **kw)
    files.append(name)
save(src.quantize(64), 'gif_transparent.gif', transparency=5)
save(src.quantize(32), 'png_palette_trns.png', transparency=3)
save(src.quantize(16), 'png_palette_4bit.png', bits=4)
save(src.convert('1'), 'png_gray_1bit.png')
for bits in (2, 4):
    save(src.convert('L'), f'png_gray_{bits}bit.png', bits=bits)
save(src.convert('LA'), 'png_la.png')
save(Image.fromarray(np.asarray(src)[:, :, 0].astype(np.uint16) * 200 + 77), 'png_gray16.png')
for mode in ('L', 'RGBA', 'CMYK'):
    save(src.convert(mode), f'tiff_{mode}.tif')
save(src.convert('RGBA'), 'bmp_32bit.bmp')
save(src.quantize(200), 'bmp_8bit.bmp')
save(src.convert('1'), 'bmp_1bit.bmp')
save(src, 'ppm.ppm')
save(src.convert('L'), 'pgm.pgm')
rgba = np.asarray(src.convert('RGBA')).copy()
rgba[50:150, 50:200, 3] = 0
save(Image.fromarray(rgba), 'webp_alpha_lossy.webp', quality=80)
save(Image.fromarray(rgba), 'webp_alpha_lossless.webp', lossless=True)
save(src, 'webp_animated.webp', save_all=True, append_images=[src.transpose(Image.FLIP_LEFT_RIGHT)])
save(src.convert('CMYK'), 'jpeg_cmyk.jpg', quality=90)
save(src, 'jpeg_422_progressive.jpg', quality=85, subsampling=1, progressive=True)
sizes = [(1, 1), (2, 1), (1, 2500), (2500, 1), (3000, 2), (2, 3000), (3000, 7), (223, 225),
         (225, 223), (224, 1001), (448, 448), (4000, 50), (50, 4000), (1500, 1001)]
rnd = random.Random(7)
sizes += [(rnd.randint(1, 1200), rnd.randint(1, 1200)) for _ in range(10)]
for i, (w, h) in enumerate(sizes):
    a = np.random.RandomState(i).randint(0, 256, (h, w, 3), dtype=np.uint8)
    save(Image.fromarray(a), f'random_{w}x{h}.png')
for name in files:
    p = f'{out}/{name}'
    ref = np.asarray(Image.open(p).convert('RGB').resize((224, 224), Image.BILINEAR))
    r = subprocess.run([binary, '--once', p, '--no-autorotate'], capture_output=True)
    if r.returncode or len(r.stdout) != ref.size:
        print(f'FAIL: oracle {name}: preprocd exit {r.returncode}: {r.stderr.decode().strip()}')
        continue
    d = np.abs(np.frombuffer(r.stdout, np.uint8).reshape(ref.shape).astype(int) - ref)
    print(f'{"PASS" if d.max() == 0 else "FAIL"}: oracle {name} ({Image.open(p).mode}) '
          f'= PIL bit for bit (max diff {d.max()}, {np.count_nonzero(d)} values differ)')
PY
else
    echo "SKIP: PIL oracle (no preprocd build or no /usr/bin/python3 with PIL + numpy)"
fi
exit 0
