#!/usr/bin/env bash
# pipeline.sh - the daemon pipeline against the in-process engine, with a
# tiny random checkpoint: identical output over ipc:// (embedded) and
# tcp://127.0.0.1 (--connect, two encoderd + two decoderd, both used), every
# line exactly once when encoderd or decoderd is killed -9 mid-run, cache
# hits on a rerun with other decoding flags, and malformed frames dropped
# without harm.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
. "$(dirname "$0")/common.bash"
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: pipeline tests not run"; exit 0; }
cli=$build/vgpt-cli
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 5 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }

# 200 lines: the corpus' decodable images under 1 MB, cycled, plus bad inputs
awk -F'\t' 'NR>1 && $3=="ok" {print $1}' "$imgs/MANIFEST.tsv" | while read -r f; do
    [ "$(stat -c %s "$imgs/$f")" -lt 1000000 ] && echo "$imgs/$f"; done > "$tmp/ok"
for i in $(seq 1 8); do cat "$tmp/ok"; done | head -n 196 > "$tmp/list"
printf '%s\n' "$imgs/bad/empty.jpg" "$imgs/bad/truncated_40pct.jpg" "$tmp/missing.jpg" "$imgs/bad/directory.jpg" >> "$tmp/list"
flags="--greedy --max-tokens 6 --no-progress"

"$cli" --in-process $flags --model "$m" < "$tmp/list" > "$tmp/ref" 2>/dev/null
ok "in-process reference run: 200 lines, 4 errors" "[ \$(wc -l < '$tmp/ref') = 200 ] && [ \$(grep -c 'ERROR: ' '$tmp/ref') = 4 ]"

"$cli" $flags --no-cache --model "$m" < "$tmp/list" > "$tmp/emb" 2>"$tmp/emb.err"; rc=$?
ok "embedded pipeline (ipc://) exits 1 for the 4 bad lines" "[ $rc = 1 ]"
ok "embedded pipeline output is identical to in-process (captions and errors per line)" \
   "diff <(cut -f1 '$tmp/ref'; grep -v ERROR '$tmp/ref') <(cut -f1 '$tmp/emb'; grep -v ERROR '$tmp/emb') >/dev/null && [ \$(grep -c 'ERROR: ' '$tmp/emb') = 4 ]"

# --- tcp://127.0.0.1: 1 preprocd, 2 encoderd, 2 decoderd, started by hand
base=$((20000 + RANDOM % 20000))
P=tcp://127.0.0.1:$base E1=tcp://127.0.0.1:$((base+1)) E2=tcp://127.0.0.1:$((base+2))
D1=tcp://127.0.0.1:$((base+3)) D2=tcp://127.0.0.1:$((base+4)) R=tcp://127.0.0.1:$((base+5))
"$build/decoderd" --listen "$D1" --model "$m" --threads 1 --stats-interval 0 2>"$tmp/d1.log" & pids+=($!)
"$build/decoderd" --listen "$D2" --model "$m" --threads 1 --stats-interval 0 2>"$tmp/d2.log" & pids+=($!)
"$build/encoderd" --listen "$E1" --next "$D1,$D2" --model "$m" --threads 1 --batch 2 --stats-interval 0 \
    --cache "$tmp/c1" 2>"$tmp/e1.log" & pids+=($!)
"$build/encoderd" --listen "$E2" --next "$D1,$D2" --model "$m" --threads 1 --batch 2 --stats-interval 0 \
    --cache "$tmp/c2" 2>"$tmp/e2.log" & pids+=($!)
"$build/preprocd" --listen "$P" --next "$E1,$E2" --stats-interval 0 2>"$tmp/p.log" & pids+=($!)
for f in d1 d2 e1 e2 p; do for i in $(seq 1 100); do grep -q ready "$tmp/$f.log" && break; sleep 0.1; done; done
ok "five daemons on tcp://127.0.0.1 report ready" "grep -q ready '$tmp/d1.log' && grep -q ready '$tmp/e2.log' && grep -q ready '$tmp/p.log'"
"$build/tests/tool_inject" "$E1"
"$build/tests/tool_inject" "$D2"
"$cli" $flags --connect "$P" --reply "$R" --model "$m" < "$tmp/list" > "$tmp/tcp" 2>/dev/null
ok "tcp pipeline output is identical to in-process" \
   "diff <(cut -f1 '$tmp/ref'; grep -v ERROR '$tmp/ref') <(cut -f1 '$tmp/tcp'; grep -v ERROR '$tmp/tcp') >/dev/null"
"$cli" --beam 2 --max-tokens 6 --no-progress --connect "$P" --reply "$R" --model "$m" < "$tmp/list" > "$tmp/tcp2" 2>/dev/null
ok "a rerun with other decoding flags captions every line" "[ \$(wc -l < '$tmp/tcp2') = 200 ]"
# the default 50 tokens exceed the tiny model's 32-token context: decoderd clamps and warns once
head -n 3 "$tmp/list" | "$cli" --greedy --no-progress --connect "$P" --reply "$R" --model "$m" > "$tmp/tcp3" 2>/dev/null
ok "decoderd clamps a max_tokens beyond the context, with one warning" \
   "[ \$(grep -c ERROR '$tmp/tcp3') = 0 ] && [ \$(wc -l < '$tmp/tcp3') = 3 ] && [ \$(cat '$tmp/d1.log' '$tmp/d2.log' | grep -c 'context is 32') -ge 1 ] && [ \$(cat '$tmp/d1.log' '$tmp/d2.log' | grep -c 'context is 32') -le 2 ]"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null; pids=()
sent() { sed -n 's/.* \([0-9]*\) sent,.*/\1/p' "$1" | tail -1; }
ok "SIGTERM: every daemon drained and exited with a final stats line" "(for f in d1 d2 e1 e2 p; do grep -q 'sent,' '$tmp/'\$f.log || exit 1; done)"
ok "both encoderd instances did work ($(sent "$tmp/e1.log") and $(sent "$tmp/e2.log") sent)" "[ \"\$(sent '$tmp/e1.log')\" -gt 0 ] && [ \"\$(sent '$tmp/e2.log')\" -gt 0 ]"
ok "both decoderd instances did work ($(sent "$tmp/d1.log") and $(sent "$tmp/d2.log") sent)" "[ \"\$(sent '$tmp/d1.log')\" -gt 0 ] && [ \"\$(sent '$tmp/d2.log')\" -gt 0 ]"
hits=$(cat "$tmp/e1.log" "$tmp/e2.log" | sed -n 's/.*cache on: \([0-9]*\) hits.*/\1/p' | awk '{s+=$1} END {print s+0}')
ok "the rerun hit the visual-token cache ($hits hits)" "[ $hits -gt 100 ]"
ok "a malformed frame on encoderd was logged as a drop" "grep -q 'dropped' '$tmp/e1.log'"
ok "a malformed frame on decoderd was logged as a drop" "grep -q 'dropped' '$tmp/d2.log'"

# --- kill -9 in the middle of an embedded run: every line once, same captions
for victim in encoderd decoderd; do
    "$cli" $flags --no-cache --window 16 --model "$m" < "$tmp/list" > "$tmp/k-$victim" 2>"$tmp/k-$victim.err" &
    cpid=$!
    killed=0
    for i in $(seq 1 100); do
        sleep 0.05
        n=$(wc -l < "$tmp/k-$victim")
        if [ "$n" -ge 40 ]; then pkill -9 -P "$cpid" -x "$victim" && killed=1; break; fi
    done
    wait "$cpid"
    ok "kill -9 $victim mid-run happened (after $n lines)" "[ $killed = 1 ]"
    ok "after kill -9 $victim: 200 lines, each input exactly once, in order" "diff <(cut -f1 '$tmp/ref') <(cut -f1 '$tmp/k-$victim') >/dev/null"
    ok "after kill -9 $victim: captions equal the undisturbed run" "diff <(grep -v ERROR '$tmp/ref') <(grep -v ERROR '$tmp/k-$victim') >/dev/null"
    ok "vgpt-cli restarted $victim" "grep -q '$victim.*restarting' '$tmp/k-$victim.err'"
done
