#!/usr/bin/env bash
# xmp.sh - --xmp sidecar|embed (issue 14): the caption lands in XMP
# dc:description (x-default) where photo managers read it, checked with
# two readers nobody here wrote (exiftool, and exempi's own CLI); embedding
# never harms a photo (pixels and every non-XMP part unchanged, mode and
# mtime kept, written through a renamed copy); an existing description is
# kept unless --xmp-overwrite; read-only and unsupported files (WebP, see
# cli/xmp.c) get an error line and stay byte-identical.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
cli=$build/vgpt-cli
same=$root/tests/xmp_same.py
[ -d "$imgs/variants" ] || { echo "SKIP: $imgs not found: xmp tests not run"; exit 0; }
command -v exiftool > /dev/null || { echo "FAIL: exiftool not installed (make deps-test)"; exit 1; }
command -v exempi > /dev/null || { echo "FAIL: exempi (CLI) not installed (make deps-test)"; exit 1; }
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 3 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }
flags="--in-process --greedy --max-tokens 5 --no-progress"
v=$imgs/variants
mkdir -p "$tmp/orig" "$tmp/e"
cp "$v/jpeg_exif_orientation6.jpg" "$tmp/orig/exif.jpg"; cp "$v/jpeg_icc_adobergb.jpg" "$tmp/orig/icc.jpg"
cp "$v/jpeg_progressive.jpg" "$tmp/orig/prog.jpg"; cp "$v/png_rgba.png" "$tmp/orig/rgba.png"
cp "$v/png_palette.png" "$tmp/orig/pal.png"; cp "$v/tiff_rgb_lzw.tif" "$tmp/orig/lzw.tif"
cp "$v/webp_lossy.webp" "$tmp/orig/lossy.webp"
chmod 644 "$tmp/orig"/*
cp -p "$tmp/orig"/* "$tmp/e/"; chmod 640 "$tmp/e/exif.jpg"; touch -d '2001-02-03 04:05:06.789' "$tmp/e"/*
stat -c '%n %a %y' "$tmp/e"/* > "$tmp/stat.before"
ls "$tmp/e"/* > "$tmp/elist"
caption_of() { grep "^$1	" "$2" | cut -f2; }
xmp_desc() { exiftool -s3 -XMP-dc:Description "$1"; }

# --- embed ------------------------------------------------------------------
"$cli" $flags --model "$m" --xmp embed --input "$tmp/elist" > "$tmp/e.tsv" 2> "$tmp/err"; rc=$?
ok "--xmp embed: exit 1 (the WebP is refused), 7 lines (rc $rc)" "[ $rc = 1 ] && [ \$(wc -l < '$tmp/e.tsv') = 7 ]"
for f in exif.jpg icc.jpg prog.jpg rgba.png pal.png lzw.tif; do
    c=$(caption_of "$tmp/e/$f" "$tmp/e.tsv")
    ok "embed $f: exiftool reads XMP-dc:Description = the caption ('$c')" \
       "[ -n '$c' ] && [ \"\$(xmp_desc '$tmp/e/$f')\" = '$c' ]"
    ok "embed $f: exempi -x reads dc:description x-default and vgpt:model, vgpt:settings" \
       "exempi -x '$tmp/e/$f' > '$tmp/x.$f' 2>&1 && grep -q 'xml:lang=\"x-default\">$c<' '$tmp/x.$f' && grep -q '<vgpt:model>model.pth<' '$tmp/x.$f' && grep -q '<vgpt:settings>greedy, no-repeat-ngram 0, max-tokens 5<' '$tmp/x.$f'"
    ok "embed $f: decoded pixels and every non-XMP part unchanged" "/usr/bin/python3 '$same' '$tmp/orig/$f' '$tmp/e/$f' '$c'"
done
ok "embed: mode (640 and 644) and mtime of every file kept" "stat -c '%n %a %y' '$tmp/e'/* | cmp -s - '$tmp/stat.before'"
ok "embed: no temporary file left beside the photos" "[ \$(ls -A '$tmp/e' | wc -l) = 7 ]"
ok "embed lossy.webp: an error line saying why, the file byte-identical" \
   "grep -q 'lossy.webp	ERROR: .*lossy.webp: xmp: .*WebP' '$tmp/e.tsv' && cmp -s '$tmp/orig/lossy.webp' '$tmp/e/lossy.webp'"
ok "the comparison can fail: an image with other pixels is told apart" \
   "! /usr/bin/python3 '$same' '$tmp/orig/exif.jpg' '$tmp/e/icc.jpg' 2>/dev/null"
cp "$tmp/orig/prog.jpg" "$tmp/seg.jpg"; exiftool -q -overwrite_original -Comment=extra "$tmp/seg.jpg"
ok "the comparison can fail: one more (COM) segment is told apart" \
   "! /usr/bin/python3 '$same' '$tmp/orig/prog.jpg' '$tmp/seg.jpg' 2>/dev/null"

# again: vgpt's own description is replaced without --xmp-overwrite
"$cli" $flags --model "$m" --xmp embed --max-tokens 3 --input "$tmp/elist" > "$tmp/e2.tsv" 2>/dev/null
c=$(caption_of "$tmp/e/pal.png" "$tmp/e2.tsv")
ok "embed again (other settings): vgpt's own description is updated ('$c')" \
   "[ \"\$(xmp_desc '$tmp/e/pal.png')\" = '$c' ] && exempi -x '$tmp/e/pal.png' | grep -q 'max-tokens 3<'"

# someone else's description stays, unless --xmp-overwrite
mkdir -p "$tmp/own"; cp "$tmp/orig/prog.jpg" "$tmp/orig/rgba.png" "$tmp/own/"
exiftool -q -overwrite_original '-XMP-dc:Description=my holiday' "$tmp/own/prog.jpg" "$tmp/own/rgba.png"
cp -p "$tmp/own/prog.jpg" "$tmp/own.before.jpg"
ls "$tmp/own"/* | "$cli" $flags --model "$m" --xmp embed > "$tmp/own.tsv" 2>/dev/null; rc=$?
ok "a description vgpt did not write is kept: error lines, files byte-identical (rc $rc)" \
   "[ $rc = 1 ] && [ \$(grep -c 'xmp: it already has a description' '$tmp/own.tsv') = 2 ] && cmp -s '$tmp/own/prog.jpg' '$tmp/own.before.jpg' && [ \"\$(xmp_desc '$tmp/own/rgba.png')\" = 'my holiday' ]"
ls "$tmp/own"/* | "$cli" $flags --model "$m" --xmp embed --xmp-overwrite > "$tmp/own.tsv" 2>/dev/null; rc=$?
c=$(caption_of "$tmp/own/prog.jpg" "$tmp/own.tsv")
ok "--xmp-overwrite replaces it (rc $rc)" "[ $rc = 0 ] && [ \"\$(xmp_desc '$tmp/own/prog.jpg')\" = '$c' ]"

# read-only photo: refused, untouched
mkdir -p "$tmp/ro"; cp "$tmp/orig/icc.jpg" "$tmp/ro/"; chmod 444 "$tmp/ro/icc.jpg"
echo "$tmp/ro/icc.jpg" | "$cli" $flags --model "$m" --xmp embed > "$tmp/ro.tsv" 2>/dev/null; rc=$?
ok "a read-only photo: error line, byte-identical, still 444 (rc $rc)" \
   "[ $rc = 1 ] && grep -q 'ERROR: .*xmp: the file is read-only' '$tmp/ro.tsv' && cmp -s '$tmp/ro/icc.jpg' '$tmp/orig/icc.jpg' && [ \$(stat -c %a '$tmp/ro/icc.jpg') = 444 ]"

# --- sidecar ------------------------------------------------------------------
mkdir -p "$tmp/s"; cp -p "$tmp/orig"/* "$tmp/s/"
ls "$tmp/s"/* > "$tmp/slist"
"$cli" $flags --model "$m" --xmp sidecar --input "$tmp/slist" > "$tmp/s.tsv" 2>/dev/null; rc=$?
ok "--xmp sidecar: every format, WebP included, exit 0 (rc $rc)" "[ $rc = 0 ]"
for f in exif.jpg rgba.png lzw.tif lossy.webp; do
    c=$(caption_of "$tmp/s/$f" "$tmp/s.tsv")
    ok "sidecar $f.xmp: exiftool reads the caption ('$c')" "[ \"\$(xmp_desc '$tmp/s/$f.xmp')\" = '$c' ]"
    ok "sidecar $f.xmp: exempi -X -x reads it, with vgpt:model" \
       "exempi -X -x '$tmp/s/$f.xmp' 2>&1 | grep -q 'x-default\">$c<' && exempi -X -x '$tmp/s/$f.xmp' | grep -q '<vgpt:model>model.pth<'"
    ok "sidecar $f: the photo itself is byte-identical" "cmp -s '$tmp/orig/$f' '$tmp/s/$f'"
done
# an existing sidecar (darktable's keywords) keeps what it had
mkdir -p "$tmp/b"; cp "$tmp/orig/exif.jpg" "$tmp/b/"
exiftool -q -o "$tmp/b/exif.xmp" '-XMP-dc:Subject=beach' '-XMP-xmp:Rating=4' "$tmp/b/exif.jpg" 2>/dev/null
echo "$tmp/b/exif.jpg" | "$cli" $flags --model "$m" --xmp sidecar --xmp-sidecar-name base > "$tmp/b.tsv" 2>/dev/null; rc=$?
c=$(caption_of "$tmp/b/exif.jpg" "$tmp/b.tsv")
ok "--xmp-sidecar-name base writes photo.xmp, keeping its keywords and rating (rc $rc)" \
   "[ $rc = 0 ] && [ ! -e '$tmp/b/exif.jpg.xmp' ] && [ \"\$(xmp_desc '$tmp/b/exif.xmp')\" = '$c' ] && [ \"\$(exiftool -s3 -XMP-dc:Subject '$tmp/b/exif.xmp')\" = beach ] && [ \"\$(exiftool -s3 -XMP-xmp:Rating '$tmp/b/exif.xmp')\" = 4 ]"
exiftool -q -overwrite_original '-XMP-dc:Description=mine' "$tmp/b/exif.xmp"
echo "$tmp/b/exif.jpg" | "$cli" $flags --model "$m" --xmp sidecar --xmp-sidecar-name base > "$tmp/b.tsv" 2>/dev/null; rc=$?
ok "a sidecar description vgpt did not write is kept (error line, rc $rc)" \
   "[ $rc = 1 ] && [ \"\$(xmp_desc '$tmp/b/exif.xmp')\" = mine ]"

# --- with --output: resumed runs skip what is done ------------------------------
mkdir -p "$tmp/r"; cp "$tmp/orig/pal.png" "$tmp/orig/prog.jpg" "$tmp/r/"
ls "$tmp/r"/*.png "$tmp/r"/*.jpg > "$tmp/rlist"
"$cli" $flags --model "$m" --xmp sidecar --input "$tmp/rlist" -o "$tmp/r.tsv" 2>/dev/null
"$cli" $flags --model "$m" --xmp sidecar --input "$tmp/rlist" -o "$tmp/r.tsv" 2>/dev/null; rc=$?
ok "--xmp with --output, run twice: 2 lines, both sidecars (rc $rc)" \
   "[ $rc = 0 ] && [ \$(wc -l < '$tmp/r.tsv') = 2 ] && [ -s '$tmp/r/pal.png.xmp' ] && [ -s '$tmp/r/prog.jpg.xmp' ]"
"$cli" --model "$m" --xmp-overwrite < /dev/null 2> "$tmp/err"; rc=$?
ok "--xmp-overwrite without --xmp is a usage error" "[ $rc = 2 ] && grep -q 'needs --xmp' '$tmp/err'"
"$cli" --model "$m" --xmp inline < /dev/null 2> "$tmp/err"; rc=$?
ok "--xmp inline is a usage error naming the choices" "[ $rc = 2 ] && grep -q 'sidecar or embed' '$tmp/err'"
