#!/usr/bin/env bash
# scale.sh - vgpt-cli's memory does not grow with the list (issue 14): the
# short variant of tools/bench_archive.sh, 2x10^4 vs 2x10^5 input lines
# through the embedded pipeline into --output (every 10th line a small
# photo, the others missing files, which cost the client the same
# bookkeeping but no model time), comparing vgpt-cli's own peak RSS (VmHWM,
# from its closing summary).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
. "$(dirname "$0")/common.bash"
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: scale test not run"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
VGPT_BUILD=$build VGPT_BENCH_REAL=10 "$root/tools/bench_archive.sh" 20000 200000 > "$tmp/out" 2> "$tmp/err"; rc=$?
sed 's/^/# /' "$tmp/err"
small=$(grep '"lines":20000,' "$tmp/out" | sed -E 's/.*"peak_rss_mib":([0-9.]+).*/\1/')
big=$(grep '"lines":200000,' "$tmp/out" | sed -E 's/.*"peak_rss_mib":([0-9.]+).*/\1/')
ok "both runs wrote every line and a summary (rc $rc)" "[ -n '$small' ] && [ -n '$big' ]"
ok "peak RSS at 2x10^5 lines ($big MiB) within 1.2x of 2x10^4 ($small MiB)" \
   "[ -n '$big' ] && [ -n '$small' ] && awk -v a='$big' -v b='$small' 'BEGIN { exit !(a <= 1.2 * b) }'"
ok "and within 4 MiB of it (a leak of 25 bytes a line would show)" \
   "[ -n '$big' ] && [ -n '$small' ] && awk -v a='$big' -v b='$small' 'BEGIN { exit !(a - b <= 4) }'"
