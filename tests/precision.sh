#!/usr/bin/env bash
# precision.sh - --precision fp32|bf16 as a user meets it: option errors,
# bf16 captions in-process and through the embedded pipeline (the same
# words: each caption's products do not depend on its batch-mates), the
# daemons' own option, the token cache keeping precisions apart, and
# fp32 staying the default.  Numbers (fidelity, speed) are engine.sh's and
# `make bench`'s.  Uses a tiny random checkpoint from vgpt-mkckpt.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
cli=$build/vgpt-cli

mkdir -p "$tmp/m"; "$build/vgpt-mkckpt" --preset tiny --seed 3 "$tmp/m/model.pth" >/dev/null 2>&1
m=$tmp/m/model.pth
find "$imgs/good" -type f | sort | head -6 > "$tmp/list"

"$cli" --model "$m" --precision fp16 < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "--precision fp16 is a usage error (exit 2) naming the choices" "[ $rc = 2 ] && grep -q 'fp32 or bf16' '$tmp/err'"
"$cli" --model "$m" --precision bf16 --connect tcp://127.0.0.1:1 --reply tcp://127.0.0.1:2 < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "--precision with --connect is refused (the daemons have their own)" "[ $rc = 2 ] && grep -q 'encoderd and decoderd with --precision' '$tmp/err'"
for d in encoderd decoderd; do
    "$build/$d" --help > "$tmp/h" 2>&1
    ok "$d --help documents --precision" "grep -q -- '--precision P' '$tmp/h'"
    next=; [ $d = encoderd ] && next="--next ipc://$tmp/y"
    "$build/$d" --listen ipc://$tmp/x $next --model "$m" --precision half > /dev/null 2> "$tmp/err"; rc=$?
    ok "$d --precision half fails with a message" "[ $rc != 0 ] && grep -q 'fp32 or bf16' '$tmp/err'"
done
"$cli" --help > "$tmp/h" 2>&1
ok "vgpt-cli --help documents --precision" "grep -q -- '--precision P' '$tmp/h'"

# bf16 runs on every x86-64 host: on oneDNN's products where it has them
# (AVX-512), on vgpt's own elsewhere (lib/mm_own.c).
run() { "$cli" "$@" --model "$m" --greedy --max-tokens 12 --no-progress --batch 4 < "$tmp/list"; }
run --in-process > "$tmp/fp32.tsv" 2>/dev/null
run --in-process --precision fp32 > "$tmp/fp32x.tsv" 2>/dev/null
ok "fp32 is the default (same captions with and without --precision fp32)" "cmp -s '$tmp/fp32.tsv' '$tmp/fp32x.tsv' && [ -s '$tmp/fp32.tsv' ]"
run --in-process --precision bf16 > "$tmp/bf16-in.tsv" 2>"$tmp/err"; rc=$?
ok "bf16 in-process captions every image (exit 0, one line each)" \
    "[ $rc = 0 ] && [ \$(wc -l < '$tmp/bf16-in.tsv') = \$(wc -l < '$tmp/list') ] && ! grep -q 'error' '$tmp/bf16-in.tsv'"
run --no-cache --precision bf16 > "$tmp/bf16-pipe.tsv" 2>"$tmp/err"; rc=$?
ok "bf16 through the embedded pipeline gives the in-process captions" "[ $rc = 0 ] && cmp -s '$tmp/bf16-in.tsv' '$tmp/bf16-pipe.tsv'"
"$cli" --in-process --model "$m" --greedy --max-tokens 12 --no-progress --batch 1 --precision bf16 < "$tmp/list" > "$tmp/bf16-b1.tsv" 2>/dev/null
ok "bf16 captions do not depend on the batch (batch 1 == batch 4)" "cmp -s '$tmp/bf16-in.tsv' '$tmp/bf16-b1.tsv'"
# VGPT_ISA=generic puts vgpt's own bf16 products on the plain C kernels on
# any host (and keeps oneDNN out where it has bf16): that path is run too.
VGPT_ISA=generic run --in-process --precision bf16 > "$tmp/bf16-gen.tsv" 2>"$tmp/err"; rc=$?
ok "bf16 on the generic kernels captions every image" \
    "[ $rc = 0 ] && [ \$(wc -l < '$tmp/bf16-gen.tsv') = \$(wc -l < '$tmp/list') ] && ! grep -q 'error' '$tmp/bf16-gen.tsv'"
VGPT_ISA=generic run --no-cache --precision bf16 > "$tmp/bf16-gen-pipe.tsv" 2>/dev/null
ok "bf16 on the generic kernels: the pipeline gives the in-process captions" "cmp -s '$tmp/bf16-gen.tsv' '$tmp/bf16-gen-pipe.tsv'"

# One cache directory, both precisions: each gets its own tokens (a bf16
# run after an fp32 one must miss, not be served fp32 tokens; a second fp32
# run hits).  encoderd's closing stats line (--verbose) counts them.
cache=$tmp/cache
n=$(wc -l < "$tmp/list")
stats() { run --cache "$cache" --verbose --precision "$1" 2>&1 >"$tmp/c-$2.tsv" | grep 'encoderd.*cache on' | tail -1; }
s1=$(stats fp32 a); s2=$(stats bf16 b); s3=$(stats fp32 c)
ok "shared token cache: bf16 after fp32 misses every image ($s2)" "echo '$s2' | grep -q ' 0 hits, $n misses, $((2 * n)) entries'"
ok "shared token cache: fp32 again hits every image ($s3)" "echo '$s3' | grep -q ' $n hits, 0 misses'"
ok "cached runs caption as uncached ones" "cmp -s '$tmp/c-a.tsv' '$tmp/fp32.tsv' && cmp -s '$tmp/c-c.tsv' '$tmp/fp32.tsv' && cmp -s '$tmp/c-b.tsv' '$tmp/bf16-pipe.tsv'"
