#!/usr/bin/env bash
# cluster.sh - a three-host vgpt cluster on one machine, CURVE on: network
# namespaces A (vgpt-cli + preprocd, 10.77.0.1), B (2 x encoderd, 10.77.0.2)
# and C (2 x decoderd, 10.77.0.3), joined by veth pairs to a bridge that lives
# in a fourth namespace (nothing is added to the host's own network).
#   1. 300 images over the tiny random checkpoint: every line captioned,
#      equal to the single-machine in-process run, both instances of each
#      stage used;
#   2. the same with B's first encoderd killed -9 mid-run: every line exactly
#      once, same captions (the client's --retry-after re-sends what was lost);
#   3. a client whose key is not listed: refused and logged, and the run
#      fails cleanly (--timeout) instead of hanging; an encoderd with an
#      unlisted key is refused by the decoders.
# Skips (never passes) where namespaces cannot be created.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
. "$(dirname "$0")/common.bash"
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: cluster test not run"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "SKIP: cluster test needs root to create network namespaces"; exit 0; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: no 'ip' command (Debian package iproute2): cluster test not run"; exit 0; }

tmp=$(mktemp -d)
tag=$$
A=vgpt-a-$tag B=vgpt-b-$tag C=vgpt-c-$tag BR=vgpt-br-$tag
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    for n in $A $B $C $BR; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- the network: one bridge, three hosts
net_up() {
    ip netns add $BR && ip -n $BR link add br0 type bridge && ip -n $BR link set br0 up || return 1
    local i=1
    for n in $A $B $C; do
        ip netns add $n && ip -n $BR link add h$i type veth peer name eth0 netns $n &&
        ip -n $BR link set h$i master br0 && ip -n $BR link set h$i up &&
        ip -n $n addr add 10.77.0.$i/24 dev eth0 && ip -n $n link set eth0 up && ip -n $n link set lo up || return 1
        i=$((i + 1))
    done
}
if ! net_up 2>"$tmp/net.err"; then
    echo "SKIP: cannot create network namespaces / veth pairs ($(head -1 "$tmp/net.err")): cluster test not run"
    exit 0
fi
ok "three namespaces on a private bridge: 10.77.0.1-3 exist only inside them" \
   "ip -n $A -4 addr show eth0 | grep -q 10.77.0.1/24 && ! ip -4 addr | grep -q '10\.77\.0\.'"

# --- keys: one cluster server keypair, one client keypair per host, one outsider
k=$tmp/keys; mkdir -p "$k" "$tmp/peers"
for n in server hostA hostB hostC outsider; do "$build/vgpt-keygen" "$k/$n" >/dev/null || echo "FAIL: vgpt-keygen $n"; done
cp "$k/hostA.pub" "$k/hostB.pub" "$k/hostC.pub" "$tmp/peers/"
curve() { echo "--curve-key $k/$1.key --curve-server-key $k/server.key --curve-peers $tmp/peers"; }

# --- model, inputs (300 decodable images under 1 MB, cycled), reference
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 5 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }
awk -F'\t' 'NR>1 && $3=="ok" {print $1}' "$imgs/MANIFEST.tsv" | while read -r f; do
    [ "$(stat -c %s "$imgs/$f")" -lt 1000000 ] && echo "$imgs/$f"; done > "$tmp/ok"
for i in $(seq 1 40); do cat "$tmp/ok"; done | head -n 300 > "$tmp/list"
flags="--greedy --max-tokens 6 --no-progress"
"$build/vgpt-cli" --in-process $flags --model "$m" < "$tmp/list" > "$tmp/ref" 2>/dev/null
ok "single-machine in-process reference: 300 lines, all captioned" \
   "[ \$(wc -l < '$tmp/ref') = 300 ] && ! grep -q 'ERROR: ' '$tmp/ref'"

# --- the daemons
P=tcp://10.77.0.1:5555 E1=tcp://10.77.0.2:5556 E2=tcp://10.77.0.2:5557
D1=tcp://10.77.0.3:5558 D2=tcp://10.77.0.3:5559
common="--stats-interval 1"
start() { # NAME NETNS PROGRAM ARGS...
    local name=$1 ns=$2; shift 2
    ip netns exec "$ns" "$@" 2>"$tmp/$name.log" &
    pids+=($!)
    eval "pid_$name=$!"
}
start d1 $C "$build/decoderd" --listen $D1 --model "$m" --threads 1 $common $(curve hostC)
start d2 $C "$build/decoderd" --listen $D2 --model "$m" --threads 1 $common $(curve hostC)
start e1 $B "$build/encoderd" --listen $E1 --next $D1,$D2 --model "$m" --threads 1 --batch 2 $common $(curve hostB)
start e2 $B "$build/encoderd" --listen $E2 --next $D1,$D2 --model "$m" --threads 1 --batch 2 $common $(curve hostB)
start p $A "$build/preprocd" --listen $P --next $E1,$E2 $common $(curve hostA)
for f in d1 d2 e1 e2 p; do for i in $(seq 1 100); do grep -q ready "$tmp/$f.log" && break; sleep 0.1; done; done
ok "five daemons on three hosts report ready with CURVE on" \
   "(for f in d1 d2 e1 e2 p; do grep -q ready '$tmp/'\$f.log && grep -q 'CURVE on' '$tmp/'\$f.log || exit 1; done)"

cli() { # OUTPUT KEY REPLY-PORT EXTRA...
    local out=$1 key=$2 port=$3; shift 3
    timeout 300 ip netns exec $A "$build/vgpt-cli" $flags --connect $P --reply tcp://10.77.0.1:$port --model "$m" \
        $(curve "$key") "$@" < "$tmp/list" > "$tmp/$out" 2>"$tmp/$out.err"
}
sent() { sed -n 's/.* \([0-9]*\) sent,.*/\1/p' "$tmp/$1.log" | tail -1; }

# --- 1. the whole run
cli run1 hostA 5560 --retry-after 30 --timeout 200; rc=$?
ok "cluster run: exit 0, 300 lines, every line captioned" \
   "[ $rc = 0 ] && [ \$(wc -l < '$tmp/run1') = 300 ] && ! grep -q 'ERROR: ' '$tmp/run1'"
ok "cluster run output is identical to the single-machine run" "cmp -s '$tmp/ref' '$tmp/run1'"
sleep 1.5 # one more stats line from every daemon
s_e1=$(sent e1) s_e2=$(sent e2) s_d1=$(sent d1) s_d2=$(sent d2)
ok "both encoderd instances on host B did work ($s_e1 and $s_e2 sent)" "[ '${s_e1:-0}' -gt 0 ] && [ '${s_e2:-0}' -gt 0 ]"
ok "both decoderd instances on host C did work ($s_d1 and $s_d2 sent)" "[ '${s_d1:-0}' -gt 0 ] && [ '${s_d2:-0}' -gt 0 ]"
ok "no connection inside the cluster was refused" "! grep -q 'refused' '$tmp/d1.log' '$tmp/d2.log' '$tmp/e1.log' '$tmp/e2.log' '$tmp/p.log' '$tmp/run1.err'"

# --- 2. kill -9 host B's first encoderd mid-run
cli run2 hostA 5560 --retry-after 5 --timeout 200 --window 16 &
cpid=$!
killed=0
for i in $(seq 1 600); do
    sleep 0.05
    n=$(wc -l < "$tmp/run2")
    if [ "$n" -ge 60 ]; then kill -9 "$pid_e1" && killed=1; break; fi
done
wait "$pid_e1" 2>/dev/null
wait "$cpid"; rc=$?
ok "host B's first encoderd was killed -9 mid-run (after $n lines)" "[ $killed = 1 ]"
ok "after the kill: exit 0, 300 lines, each input exactly once, in order" \
   "[ $rc = 0 ] && diff <(cut -f1 '$tmp/ref') <(cut -f1 '$tmp/run2') >/dev/null"
ok "after the kill: captions equal the single-machine run" "cmp -s '$tmp/ref' '$tmp/run2'"
sleep 1.5
ok "the surviving encoderd took over ($(sent e2) sent in total, was $s_e2)" "[ \"\$(sent e2)\" -gt $((s_e2 + 150)) ]"

# --- 3. keys that are not listed
head -n 5 "$tmp/list" > "$tmp/list5"
t0=$(date +%s)
timeout 120 ip netns exec $A "$build/vgpt-cli" $flags --connect $P --reply tcp://10.77.0.1:5561 --model "$m" \
    $(curve outsider) --timeout 5 < "$tmp/list5" > "$tmp/run3" 2>"$tmp/run3.err"
rc=$? t=$(( $(date +%s) - t0 ))
opub=$(sed -n 's/.*public-key = "\(.*\)"/\1/p' "$k/outsider.pub")
ok "a client with an unlisted key gets no caption: exit 1, 5 error lines, after ${t}s" \
   "[ $rc = 1 ] && [ \$(wc -l < '$tmp/run3') = 5 ] && [ \$(grep -c 'ERROR: ' '$tmp/run3') = 5 ] && [ $t -lt 60 ]"
ok "the client reports that preprocd refused its key" "grep -q 'refused this client' '$tmp/run3.err'"
ok "preprocd logged the refusal with the outsider's public key" "grep -F 'refused' '$tmp/p.log' | grep -qF -- '$opub'"

start rogue $B "$build/encoderd" --listen tcp://10.77.0.2:5562 --next $D1,$D2 --model "$m" --threads 1 $(curve outsider)
for i in $(seq 1 50); do grep -qF -- "$opub" "$tmp/d1.log" && grep -qF -- "$opub" "$tmp/d2.log" && break; sleep 0.1; done
ok "an encoderd with an unlisted key is refused by both decoders (logged with its key)" \
   "grep -F refused '$tmp/d1.log' | grep -qF -- '$opub' && grep -F refused '$tmp/d2.log' | grep -qF -- '$opub'"

for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null; pids=()
ok "SIGTERM: the surviving daemons drained and exited with a final stats line" \
   "(for f in d1 d2 e2 p; do tail -1 '$tmp/'\$f.log | grep -q 'sent,' || exit 1; done)"
ok "no sanitizer or crash report in any log" "! grep -l 'Sanitizer\|runtime error\|Segmentation' '$tmp'/*.log '$tmp'/*.err 2>/dev/null | grep -q ."
