#!/usr/bin/env bash
# cache.sh - the visual-token cache against a hostile or unlucky user, end
# to end, with a tiny random checkpoint (captions compared with an
# uncached --in-process run):
#   - data.mdb truncated between runs: encoderd starts, uncached, warns once;
#   - data.mdb truncated while encoderd runs: it stays up, uncached, warns;
#   - damaged entry contents: misses (re-encoded), never served as captions;
#   - NaN visual tokens (a checkpoint with a NaN weight): an error line per
#     image from decoderd, not a caption;
#   - the default cache on a fresh account ($HOME without .cache): created
#     with its parents (0700), and hit on the next run.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
py=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
# SIGTERM, then SIGKILL after 10 s: a daemon stuck draining towards a dead
# peer must not hang the test.
stop_all() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 1 100); do
        alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break; sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null; pids=()
}
cleanup() { stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
. "$(dirname "$0")/common.bash"
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: cache tests not run"; exit 0; }
cli=$build/vgpt-cli
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 5 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }
awk -F'\t' 'NR>1 && $3=="ok" {print $1}' "$imgs/MANIFEST.tsv" | while read -r f; do
    [ "$(stat -c %s "$imgs/$f")" -lt 300000 ] && echo "$imgs/$f"; done | head -n 8 > "$tmp/list"
n=$(wc -l < "$tmp/list")
flags="--greedy --max-tokens 6 --no-progress"
"$cli" --in-process --no-cache $flags --model "$m" < "$tmp/list" > "$tmp/ref" 2>/dev/null
ok "uncached in-process reference: $n captions" "[ $n -ge 4 ] && [ \$(grep -c 'ERROR' '$tmp/ref') = 0 ]"
same() { diff "$tmp/ref" "$1" >/dev/null; }

# --- D1: truncated between runs
"$cli" $flags --cache "$tmp/c1" --model "$m" < "$tmp/list" > "$tmp/o1" 2>"$tmp/e1"; rc=$?
ok "a first cached run fills the cache" "[ $rc = 0 ] && same '$tmp/o1' && [ -s '$tmp/c1/data.mdb' ]"
truncate -s 5000 "$tmp/c1/data.mdb"
"$cli" $flags --verbose --cache "$tmp/c1" --model "$m" < "$tmp/list" > "$tmp/o1b" 2>"$tmp/e1b"; rc=$?
ok "data.mdb truncated to 5000 bytes: the next run still captions everything (rc $rc)" \
   "[ $rc = 0 ] && same '$tmp/o1b'"
ok "... encoderd did not die or restart" "! grep -q 'exited during start-up\|died' '$tmp/e1b'"
ok "... and warned once that the cache is damaged and off" \
   "[ \$(grep -c 'token cache disabled' '$tmp/e1b') = 1 ] && grep -q 'data.mdb is damaged' '$tmp/e1b'"

# --- D2: truncated under a running encoderd (daemons started by hand, so a
# crash is not hidden by the client's restarts)
P=ipc://$tmp/p E=ipc://$tmp/e D=ipc://$tmp/d R=ipc://$tmp/r
"$build/decoderd" --listen "$D" --model "$m" --threads 1 --stats-interval 0 2>"$tmp/d.log" & pids+=($!)
"$build/encoderd" --listen "$E" --next "$D" --model "$m" --threads 1 --stats-interval 0 \
    --cache "$tmp/c2" 2>"$tmp/e.log" & epid=$!; pids+=($epid)
"$build/preprocd" --listen "$P" --next "$E" --stats-interval 0 2>"$tmp/p.log" & pids+=($!)
for f in d e p; do for i in $(seq 1 100); do grep -q ready "$tmp/$f.log" && break; sleep 0.1; done; done
conn="--connect $P --reply $R --timeout 20"
"$cli" $flags $conn --model "$m" < "$tmp/list" > "$tmp/o2" 2>/dev/null; rc=$?
ok "three daemons by hand: a first run fills encoderd's cache" "[ $rc = 0 ] && same '$tmp/o2' && [ -s '$tmp/c2/data.mdb' ]"
truncate -s 5000 "$tmp/c2/data.mdb"
"$cli" $flags $conn --model "$m" < "$tmp/list" > "$tmp/o2b" 2>/dev/null; rc=$?
ok "data.mdb truncated while encoderd runs: the next run captions everything (rc $rc)" "[ $rc = 0 ] && same '$tmp/o2b'"
ok "... encoderd is still running" "kill -0 $epid 2>/dev/null"
ok "... and logged one warning that its cache is off" \
   "[ \$(grep -c 'token cache disabled' '$tmp/e.log') = 1 ] && grep -q 'shrank' '$tmp/e.log'"
stop_all

# --- D8: damaged entry contents.  Every stored entry starts with "VGTK";
# overwriting 1 KiB of its tokens with 0xff (NaN floats) must not be served.
"$cli" $flags --cache "$tmp/c3" --model "$m" < "$tmp/list" > "$tmp/o3" 2>/dev/null
hit=$("$py" - "$tmp/c3/data.mdb" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n, at = 0, b.find(b'VGTK')
while at >= 0:
    b[at + 64:at + 64 + 1024] = b'\xff' * 1024
    n, at = n + 1, b.find(b'VGTK', at + 1)
open(p, 'r+b').write(b)
print(n)
EOF
)
"$cli" $flags --verbose --cache "$tmp/c3" --model "$m" < "$tmp/list" > "$tmp/o3b" 2>"$tmp/e3b"; rc=$?
ok "damaged token-cache entries ($hit) are re-encoded: same captions as uncached, rc $rc" \
   "[ '$hit' -ge 1 ] && [ $rc = 0 ] && same '$tmp/o3b'"
ok "... reported once, and counted in encoderd's stats line" \
   "[ \$(grep -c 'is damaged' '$tmp/e3b') = 1 ] && grep -q '[1-9][0-9]* damaged' '$tmp/e3b'"

# --- NaN visual tokens reaching decoderd are an error for the request
if "$py" -c 'import torch' 2>/dev/null; then
    mkdir -p "$tmp/nan"
    cp "$tmp/m/config.json" "$tmp/nan/"
    "$py" - "$m" "$tmp/nan/model.pth" <<'EOF'
import sys, torch
d = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
sd = d['model_state_dict'] if 'model_state_dict' in d else d
sd['vision.resampler.mlp.1.3.bias'][0] = float('nan')   # the resampler's last layer: every token NaN
torch.save(d, sys.argv[2])
EOF
    "$cli" $flags --no-cache --model "$tmp/nan/model.pth" < "$tmp/list" > "$tmp/o4" 2>/dev/null; rc=$?
    ok "NaN visual tokens: every line is an error naming them, none a caption (rc $rc)" \
       "[ $rc = 1 ] && [ \$(grep -c 'ERROR: .*visual tokens contain NaN/Inf' '$tmp/o4') = $n ]"
else
    echo "SKIP: NaN visual tokens ($py has no torch to write the checkpoint)"
fi

# --- D12: the default cache on a fresh account
mkdir -p "$tmp/home"
(export HOME=$tmp/home; unset XDG_CACHE_HOME
 "$cli" $flags --model "$m" < "$tmp/list" > "$tmp/o5" 2>/dev/null
 "$cli" $flags --verbose --model "$m" < "$tmp/list" > "$tmp/o5b" 2>"$tmp/e5b")
ok "a fresh \$HOME: the default cache ~/.cache/vgpt/tokens is created" \
   "same '$tmp/o5' && [ -s '$tmp/home/.cache/vgpt/tokens/data.mdb' ]"
ok "... its new parents are private (0700)" \
   "[ \$(stat -c %a '$tmp/home/.cache') = 700 ] && [ \$(stat -c %a '$tmp/home/.cache/vgpt') = 700 ]"
ok "... and the second run hits it ($(sed -n 's/.*cache on: \([0-9]*\) hits.*/\1/p' "$tmp/e5b" | tail -1) hits)" \
   "same '$tmp/o5b' && [ \"\$(sed -n 's/.*cache on: \([0-9]*\) hits.*/\1/p' '$tmp/e5b' | tail -1)\" = $n ]"
