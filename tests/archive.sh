#!/usr/bin/env bash
# archive.sh - captioning an archive with --output (issue 14): a run killed
# with SIGKILL at random points and resumed, again and again, ends with every
# input path exactly once and the captions of an uninterrupted run; error
# lines are retried (or kept with --no-retry-errors); a torn last line is
# repaired; a file that is not ours is refused; SIGINT/SIGTERM stop cleanly
# (finished results written, daemons stopped, exit 130/143); the progress
# line knows the total and the summary counts what happened.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/common.bash"
cli=$build/vgpt-cli
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: archive tests not run"; exit 0; }
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 3 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }
# A script's background jobs ignore SIGINT; `dfl CMD &` gives it back (as lifecycle.sh).
if env --default-signal=INT true 2>/dev/null; then dfl() { exec env --default-signal=INT "$@"; }
else dfl() { exec /usr/bin/python3 -c 'import os,signal,sys
signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }; fi
left_procs() { pgrep -f "$1/" | tr '\n' ' '; }

# 500 distinct paths: symlinks to 14 small photos (64 px, JPEG and PNG), and
# every 50th one missing (an error line to retry).
/usr/bin/python3 - "$imgs/good" "$tmp/img" <<'PY' || { echo "FAIL: making small test photos"; exit 1; }
import glob, os, sys
from PIL import Image
os.makedirs(sys.argv[2])
for i, f in enumerate(sorted(glob.glob(sys.argv[1] + "/*"))[:14]):
    im = Image.open(f).convert("RGB"); im.thumbnail((64, 64))
    im.save("%s/s%02d.%s" % (sys.argv[2], i, "png" if i % 2 else "jpg"))
PY
mkdir -p "$tmp/l"
for i in $(seq 1 500); do
    k=$((i % 14)); ext=$([ $((k % 2)) = 1 ] && echo png || echo jpg)
    [ $((i % 50)) = 0 ] || ln -s "../img/s$(printf %02d $k).$ext" "$tmp/l/p$i.$ext"
    echo "$tmp/l/p$i.$ext"
done > "$tmp/list"
flags="--sample --seed 1 --max-tokens 6 --no-cache"
"$cli" --in-process --model "$m" $flags --input "$tmp/list" > "$tmp/ref.tsv" 2>/dev/null; rc=$?
ok "uninterrupted reference run: 500 lines, 10 errors, exit 1 (rc $rc)" \
   "[ $rc = 1 ] && [ \$(wc -l < '$tmp/ref.tsv') = 500 ] && [ \$(grep -c 'ERROR: ' '$tmp/ref.tsv') = 10 ]"
ok "the captions differ between photos (so comparing them means something)" \
   "[ \$(grep -v ERROR '$tmp/ref.tsv' | cut -f2 | sort -u | wc -l) -ge 5 ]"

# Each line of $1 is a whole result line of the reference (same path, same caption).
lines_valid() { /usr/bin/python3 - "$1" "$tmp/ref.tsv" <<'PY'
import os, sys
ref = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]))
data = open(sys.argv[1]).read() if os.path.exists(sys.argv[1]) else ""
if data and not data.endswith("\n"): data = data[:data.rfind("\n") + 1]  # a torn tail is repaired on resume
for l in data.splitlines():
    p, c = l.split("\t", 1)
    if ref.get(p) != c: sys.exit("line differs: %r" % l)
PY
}
# The file, sorted, is the reference, sorted: every path exactly once.
same_as_ref() { cmp -s <(sort "$1") <(sort "$tmp/ref.tsv"); }

# --- SIGKILL at random points, resume, repeatedly ------------------------
run_killed() { # $1 = mode flag ("" = embedded pipeline), $2 = output, $3 = max kill delay (tenths of s)
    # Up to 11 runs are killed after a random delay; the 12th runs to its end.
    local mode=$1 out=$2 max=$3 n=0 mid=0 done=0 bad=0 k
    for k in $(seq 1 12); do
        TMPDIR=$tmp/t-$k "$cli" $mode --model "$m" $flags --no-progress --input "$tmp/list" -o "$out" \
            2>> "$tmp/killed.err" &
        local pid=$!; pids+=($pid)
        mkdir -p "$tmp/t-$k"
        if [ "$k" -lt 12 ]; then
            sleep "0.$((RANDOM % max))$((RANDOM % 10))"
            kill -9 "$pid" 2>/dev/null && n=$((n + 1))
        fi
        wait "$pid"; local rc=$?
        local have; have=$(cat "$out" 2>/dev/null | wc -l)
        [ "$rc" = 137 ] && [ "$have" -gt 0 ] && [ "$have" -lt 500 ] && mid=$((mid + 1))
        lines_valid "$out" || bad=$((bad + 1))
        [ "$rc" = 1 ] && { done=1; break; }
    done
    echo "$n $mid $done $bad"
}
RANDOM=14
read -r kills mid finished bad <<< "$(run_killed --in-process "$tmp/k1.tsv" 9)"
ok "--in-process: killed -9 $kills times at random points ($mid with part of the file written), then a run finished" \
   "[ $mid -ge 3 ] && [ $finished = 1 ]"
ok "--in-process: after every kill the file held only whole, correct result lines ($bad bad)" "[ $bad = 0 ]"
ok "--in-process: resumed to the end: every path exactly once, the uninterrupted run's captions" \
   "same_as_ref '$tmp/k1.tsv'"
read -r kills mid finished bad <<< "$(run_killed "" "$tmp/k2.tsv" 9)"
ok "embedded pipeline: killed -9 $kills times ($mid with part of the file written), then a run finished" \
   "[ $mid -ge 3 ] && [ $finished = 1 ]"
ok "embedded pipeline: only whole, correct lines after each kill ($bad bad)" "[ $bad = 0 ]"
ok "embedded pipeline: resumed to the end: every path once, same captions" "same_as_ref '$tmp/k2.tsv'"
sleep 3.5 # the janitor's grace
ok "no daemon of a killed run is left (left: $(left_procs "$tmp/t-"))" "[ -z \"\$(left_procs '$tmp/t-')\" ]"

# --- a finished file: nothing left to do, errors retried ------------------
cp "$tmp/ref.tsv" "$tmp/r.tsv"
"$cli" --in-process --model "$m" $flags --no-retry-errors --input "$tmp/list" -o "$tmp/r.tsv" 2> "$tmp/err"; rc=$?
ok "--no-retry-errors on a finished file: nothing captioned, all 500 skipped, exit 0 (rc $rc)" \
   "[ $rc = 0 ] && cmp -s '$tmp/r.tsv' '$tmp/ref.tsv' && grep -q '0 captioned, 500 skipped' '$tmp/err'"
ln -s ../img/s00.jpg "$tmp/l/p50.jpg" # one missing photo turns up
"$cli" --in-process --model "$m" $flags --input "$tmp/list" -o "$tmp/r.tsv" 2> "$tmp/err"; rc=$?
ok "resuming retries the 10 error lines: 1 now captioned, 9 errors again (rc $rc)" \
   "[ $rc = 1 ] && grep -q '1 captioned, 490 skipped' '$tmp/err' && [ \$(grep -c ERROR '$tmp/r.tsv') = 9 ]"
ok "every path is still there exactly once (500 lines, 500 paths)" \
   "[ \$(wc -l < '$tmp/r.tsv') = 500 ] && [ \$(cut -f1 '$tmp/r.tsv' | sort -u | wc -l) = 500 ]"
ok "the photo that turned up has its caption" "grep -q '^$tmp/l/p50.jpg	[^E]' '$tmp/r.tsv'"
rm "$tmp/l/p50.jpg"

# --- a torn last line is cut off and redone --------------------------------
head -n 100 "$tmp/ref.tsv" > "$tmp/torn.tsv"
printf '%s\tpartial capt' "$(sed -n 101p "$tmp/ref.tsv" | cut -f1)" >> "$tmp/torn.tsv"
"$cli" --in-process --model "$m" $flags --input "$tmp/list" -o "$tmp/torn.tsv" 2> "$tmp/err"; rc=$?
ok "a torn last line is repaired: the file ends as the uninterrupted run (rc $rc)" \
   "[ $rc = 1 ] && same_as_ref '$tmp/torn.tsv' && ! grep -q 'partial capt' '$tmp/torn.tsv'"
ok "... and its path was captioned again: 392 captioned, 98 skipped (the 2 error lines retried)" "grep -q '392 captioned, 98 skipped' '$tmp/err'"

# --- jsonl resumes too ------------------------------------------------------
"$cli" --in-process --model "$m" $flags --format jsonl --input "$tmp/list" > "$tmp/ref.jsonl" 2>/dev/null
head -n 250 "$tmp/ref.jsonl" > "$tmp/j.jsonl"; printf '{"path":"x' >> "$tmp/j.jsonl"
"$cli" --in-process --model "$m" $flags --format jsonl --input "$tmp/list" -o "$tmp/j.jsonl" 2>/dev/null
ok "--format jsonl: torn line repaired, resumed, same lines as uninterrupted" \
   "cmp -s <(sort '$tmp/j.jsonl') <(sort '$tmp/ref.jsonl')"

# --- a file that is not ours is refused, untouched --------------------------
printf 'hello world\n' > "$tmp/notours.tsv"
"$cli" --in-process --model "$m" $flags --input "$tmp/list" -o "$tmp/notours.tsv" 2> "$tmp/err"; rc=$?
ok "--output holding other text: exit 2 naming file and line, file unchanged (rc $rc)" \
   "[ $rc = 2 ] && grep -q 'notours.tsv:1: not a vgpt-cli tsv result line' '$tmp/err' && [ \"\$(cat '$tmp/notours.tsv')\" = 'hello world' ]"
"$cli" --in-process --model "$m" $flags --format jsonl --input "$tmp/list" -o "$tmp/ref.tsv" 2> "$tmp/err"; rc=$?
ok "--format jsonl on a tsv results file: refused (rc $rc)" "[ $rc = 2 ] && grep -q 'same --format' '$tmp/err'"
"$cli" --in-process --model "$m" --no-retry-errors < /dev/null 2> "$tmp/err"; rc=$?
ok "--no-retry-errors without --output is a usage error" "[ $rc = 2 ] && grep -q 'needs --output' '$tmp/err'"

# --- SIGINT / SIGTERM: clean stop, finished lines written, resumable --------
for sig in INT:130 TERM:143; do
    name=${sig%:*} want=${sig#*:}
    for mode in --in-process ""; do
        t=$tmp/sig-$name${mode:+-inproc}; mkdir -p "$t"; mkfifo "$t.in"
        TMPDIR=$t dfl "$cli" $mode --model "$m" $flags --no-progress -o "$t.tsv" < "$t.in" 2> "$t.err" &
        cpid=$!; pids+=($cpid)
        exec 8> "$t.in"; head -n 120 "$tmp/list" >&8 # stdin stays open: never over by itself
        for i in $(seq 1 100); do [ "$(cat "$t.tsv" 2>/dev/null | wc -l)" -ge 100 ] && break; sleep 0.1; done
        kill -"$name" "$cpid"; wait "$cpid"; rc=$?
        exec 8>&-
        ok "SIG$name ${mode:-(pipeline)}: exit $want (rc $rc), $(wc -l < "$t.tsv") whole correct lines written" \
           "[ $rc = $want ] && [ \$(wc -l < '$t.tsv') -ge 100 ] && lines_valid '$t.tsv' && [ \"\$(tail -c1 '$t.tsv' | od -An -c | tr -d ' ')\" = '\\n' ]"
        sleep 0.5
        ok "SIG$name ${mode:-(pipeline)}: no daemon and no private directory left" \
           "[ -z \"\$(left_procs '$t')\" ] && [ -z \"\$(ls -A '$t')\" ]"
        head -n 120 "$tmp/list" | "$cli" $mode --model "$m" $flags --no-progress -o "$t.tsv" 2>/dev/null
        ok "SIG$name ${mode:-(pipeline)}: resumed, the 120 lines are all there once" \
           "cmp -s <(sort '$t.tsv') <(head -n 120 '$tmp/ref.tsv' | sort)"
    done
done

# --- progress: total, percentage, ETA as log lines; the summary -------------
"$cli" --in-process --model "$m" $flags --batch 1 --progress --progress-interval 0.2 --input "$tmp/list" \
    > /dev/null 2> "$tmp/prog"
ok "progress log lines (not a terminal) show N/500 (P%) img/s ETA" \
   "grep -Eq '^vgpt-cli: [0-9]+/500 \\([0-9.]+%\\) [0-9.]+ img/s ETA [0-9]+' '$tmp/prog'"
ok "the summary without --output: 490 captioned, 10 errors (10 missing), wall, throughput; no resume count" \
   "grep -Eq '^vgpt-cli: done: 490 captioned, 10 errors \\(10 missing\\); wall [0-9]+s, [0-9.]+ img/s' '$tmp/prog'"
"$cli" --in-process --model "$m" $flags --progress --progress-interval 0.2 < "$tmp/list" > /dev/null 2> "$tmp/prog"
ok "a regular file on standard input has its total too" "grep -Eq '/500 \\(' '$tmp/prog'"
cat "$tmp/list" | "$cli" --in-process --model "$m" $flags --batch 1 --progress --progress-interval 0.2 > /dev/null 2> "$tmp/prog"
ok "a pipe has no total: N done, R img/s" "grep -Eq '^vgpt-cli: [0-9]+ done, [0-9.]+ img/s' '$tmp/prog' && ! grep -q '/500' '$tmp/prog'"
"$cli" --in-process --model "$m" $flags --input "$tmp/list" > /dev/null 2> "$tmp/prog"
ok "without --output or a terminal, no progress and no summary (stderr empty)" "[ ! -s '$tmp/prog' ]"
"$cli" --in-process --model "$m" $flags --input "$tmp/nolist" < /dev/null 2> "$tmp/err"; rc=$?
ok "--input of a missing file: exit 2 naming it" "[ $rc = 2 ] && grep -q 'nolist' '$tmp/err'"
"$cli" --help > "$tmp/help"
ok "--help documents --output, --input, --no-retry-errors, --xmp, --progress-interval and exit 130/143" \
   "grep -q -- --output '$tmp/help' && grep -q -- --input '$tmp/help' && grep -q -- --no-retry-errors '$tmp/help' && grep -q -- '--xmp MODE' '$tmp/help' && grep -q -- --progress-interval '$tmp/help' && grep -q 130 '$tmp/help' && grep -q 143 '$tmp/help'"
