#!/usr/bin/env bash
# lifecycle.sh - how vgpt-cli and its daemons start, restart and end, with a
# tiny random checkpoint:
#   - every way out of vgpt-cli (`| head -1`, SIGINT, SIGTERM, SIGHUP,
#     kill -9) leaves no private vgpt-* directory and no daemon behind;
#     signals give 128 + N, a closed stdout exit 2;
#   - a daemon blocked sending to a next stage that is gone still exits on
#     SIGTERM, and one started with PR_SET_PDEATHSIG keeps it across its
#     re-exec;
#   - a daemon that keeps dying is restarted with a backoff and then fails
#     the run (exit 2) with the reason from its log;
#   - after the re-exec the programs keep their names (/proc/PID/comm);
#   - thread counts: the default is the CPUs the process may use (taskset,
#     cgroup quota), --threads far above them costs little, idle threads
#     sleep.
# The signal tests run against every build given ($VGPT_BUILD, and
# $VGPT_SAN_BUILD under ASan/UBSan when set).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
pids=()
cg= child=
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$child" ] && rmdir "$child" 2>/dev/null
    [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
    pkill -9 -f "$tmp/" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/common.bash"
[ -d "$imgs/good" ] || { echo "SKIP: $imgs not found: lifecycle tests not run"; exit 0; }
m=$tmp/m/model.pth; mkdir -p "$tmp/m"
"$build/vgpt-mkckpt" --preset tiny --seed 3 "$m" >/dev/null 2>&1 || { echo "FAIL: vgpt-mkckpt"; exit 1; }
ls "$imgs"/good/* | head -n 14 > "$tmp/l14"
for i in 1 2 3 4; do cat "$tmp/l14"; done | head -n 50 > "$tmp/l50"
img=$(head -n 1 "$tmp/l14")
flags="--greedy --max-tokens 5 --no-progress --no-cache"
# A script's background jobs ignore SIGINT; the cli must get it as from a
# terminal, so `dfl CMD... &` runs CMD with SIGINT's default action back.
if env --default-signal=INT true 2>/dev/null; then
    dfl() { exec env --default-signal=INT "$@"; }
else
    dfl() {
        exec /usr/bin/python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGPIPE): signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
    }
fi

# What is left of a run whose TMPDIR was $1: its files, and its processes
# (a daemon names the directory in its argv; vgpt-cli and its janitor have
# TMPDIR=$1 in their environment).
left_files() { ls -A "$1"; }
left_procs() {
    { pgrep -f "$1/"; grep -lzxF "TMPDIR=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; } | sort -u | tr '\n' ' '
}
# Waits up to $2 s until nothing of run $1 is left; true when so.
gone_within() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        [ -z "$(left_files "$1")" ] && [ -z "$(left_procs "$1")" ] && return 0
        sleep 0.1
    done
    return 1
}
# Waits up to $2 s for file $1 to have a line.
wait_line() { local i; for i in $(seq 1 $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
daemons_of() { pgrep -f "$1/vgpt-......" | wc -l; }

builds=("$build")
[ -n "${VGPT_SAN_BUILD:-}" ] && builds+=("$VGPT_SAN_BUILD")
for b in "${builds[@]}"; do
    cli=$b/vgpt-cli
    tag=$([ "$b" = "$build" ] && echo plain || echo asan)
    [ -x "$cli" ] || { echo "FAIL: $cli not built"; continue; }

    # --- `| head -1` on 50 images: EPIPE on stdout ends the run, exit 2
    t=$tmp/$tag-pipe; mkdir -p "$t"
    TMPDIR=$t "$cli" $flags --model "$m" < "$tmp/l50" 2> "$t.err" | head -n 1 > "$t.out"
    rc=${PIPESTATUS[0]}
    ok "$tag: | head -1: one line out, vgpt-cli exits 2 (rc $rc) and says why" \
       "[ \$(wc -l < '$t.out') = 1 ] && [ $rc = 2 ] && grep -q 'Broken pipe' '$t.err'"
    ok "$tag: | head -1: no private directory and no daemon left (left: $(left_files "$t") $(left_procs "$t"))" \
       "gone_within '$t' 10"

    # --- SIGINT / SIGTERM / SIGHUP mid-run: 128 + N, nothing left
    for sig in INT:130 TERM:143 HUP:129; do
        name=${sig%:*} want=${sig#*:}
        t=$tmp/$tag-$name; mkdir -p "$t"; mkfifo "$t.in"
        TMPDIR=$t dfl "$cli" $flags --model "$m" < "$t.in" > "$t.out" 2> "$t.err" &
        cpid=$!
        exec 8> "$t.in"; cat "$tmp/l50" >&8 # stdin stays open: the run is never over by itself
        wait_line "$t.out" 60
        n=$(daemons_of "$t")
        kill -"$name" "$cpid"
        wait "$cpid"; rc=$?
        exec 8>&-
        ok "$tag: SIG$name mid-run ($n daemons up, $(wc -l < "$t.out") lines out): exit $want (rc $rc)" \
           "[ $n = 3 ] && [ $rc = $want ]"
        ok "$tag: SIG$name: no private directory and no daemon left (left: $(left_files "$t") $(left_procs "$t"))" \
           "gone_within '$t' 10"
    done

    # --- kill -9 of vgpt-cli itself: the daemons (PR_SET_PDEATHSIG) and the
    # janitor clean up without it
    t=$tmp/$tag-KILL; mkdir -p "$t"; mkfifo "$t.in"
    TMPDIR=$t dfl "$cli" $flags --model "$m" < "$t.in" > "$t.out" 2> "$t.err" &
    cpid=$!
    exec 8> "$t.in"; cat "$tmp/l50" >&8
    wait_line "$t.out" 60
    n=$(daemons_of "$t")
    kill -9 "$cpid"; wait "$cpid" 2>/dev/null
    exec 8>&-
    ok "$tag: kill -9 vgpt-cli mid-run ($n daemons up): within 10 s no private directory and no daemon left" \
       "[ $n = 3 ] && gone_within '$t' 10"
    ok "$tag: kill -9 vgpt-cli: (left: $(left_files "$t") $(left_procs "$t"))" "[ -z \"\$(left_procs '$t')\" ]"

    # --- a daemon blocked sending to a next stage that is not there exits on SIGTERM
    t=$tmp/$tag-blocked; mkdir -p "$t"
    "$b/preprocd" --listen "ipc://$t/p" --next "ipc://$t/nobody" --stats-interval 0 2> "$t.log" &
    ppid=$!; pids+=($ppid)
    for i in $(seq 1 100); do grep -q ready "$t.log" && break; sleep 0.1; done
    echo "$img" | timeout 60 "$cli" --connect "ipc://$t/p" --reply "ipc://$t/r" --model "$m" --timeout 2 \
        > /dev/null 2>&1
    kill -TERM "$ppid"
    for i in $(seq 1 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
    alive=$(kill -0 "$ppid" 2>/dev/null && echo yes || echo no)
    ok "$tag: preprocd blocked forwarding to a missing encoderd exits within 10 s of SIGTERM (alive: $alive)" \
       "[ $alive = no ] && grep -q 'accepted nothing' '$t.log'"
done

# --- a daemon started with PR_SET_PDEATHSIG (as vgpt-cli starts them) keeps
# it across vgpt_process_tune's re-exec, and keeps its name
t=$tmp/pdeath; mkdir -p "$t"
/usr/bin/python3 - "$build/decoderd" "$t" "$m" > "$t.pid" 2> "$t.err" <<'EOF' &
import ctypes, os, sys, time
daemon, d, model = sys.argv[1:]
env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}  # so that it re-executes
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    os.execve(daemon, [daemon, "--listen", "ipc://%s/dec" % d, "--model", model, "--stats-interval", "0"], env)
print(pid, flush=True)
time.sleep(3)  # the daemon re-executes and loads meanwhile
EOF
parent=$!
wait_line "$t.pid" 10; dpid=$(cat "$t.pid")
sleep 2
comm=$(cat "/proc/$dpid/comm" 2>/dev/null)
wait "$parent"
for i in $(seq 1 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
alive=$(kill -0 "$dpid" 2>/dev/null && echo yes || echo no)
kill -9 "$dpid" 2>/dev/null
ok "decoderd re-executed itself and is still called decoderd (comm '$comm')" "[ '$comm' = decoderd ]"
ok "decoderd keeps PR_SET_PDEATHSIG across the re-exec: it exits within 10 s of its parent (alive: $alive)" \
   "[ $alive = no ]"

# --- names after the re-exec: /proc/PID/comm, what pgrep, killall and top show
mkfifo "$tmp/name.in"
env -u OPENBLAS_THREAD_TIMEOUT "$build/vgpt-cli" --in-process --model "$m" < "$tmp/name.in" > /dev/null 2>&1 &
cpid=$!
exec 8> "$tmp/name.in"; sleep 1
comm=$(cat "/proc/$cpid/comm" 2>/dev/null)
found=$(pgrep -x vgpt-cli | grep -cx "$cpid")
exec 8>&-; wait "$cpid"
ok "vgpt-cli keeps its name after the re-exec (comm '$comm'; pgrep -x vgpt-cli finds it: $found)" \
   "[ '$comm' = vgpt-cli ] && [ $found = 1 ]"
for d in encoderd preprocd; do
    extra=; [ $d = encoderd ] && extra="--model $m"
    env -u OPENBLAS_THREAD_TIMEOUT "$build/$d" --listen "ipc://$tmp/$d" --next "ipc://$tmp/$d-next" $extra \
        --stats-interval 0 2>/dev/null &
    dpid=$!; pids+=($dpid); sleep 1
    comm=$(cat "/proc/$dpid/comm" 2>/dev/null)
    kill "$dpid"; wait "$dpid" 2>/dev/null
    ok "$d keeps its name after the re-exec (comm '$comm')" "[ '$comm' = $d ]"
done

# --- D2: encoderd dies after the checkpoint under a running pipeline is
# replaced by a broken file (a half-finished download, say): each restart
# fails at start-up; with a backoff and a limit the run ends, exit 2, with
# the reason from encoderd's log, and nothing is left behind.
t=$tmp/restart; mkdir -p "$t" "$t-m"; cp "$tmp/m/"* "$t-m/"; mkfifo "$t.in"
TMPDIR=$t timeout 60 "$build/vgpt-cli" $flags --model "$t-m/model.pth" < "$t.in" > "$t.out" 2> "$t.err" &
cpid=$!
exec 8> "$t.in"; echo "$img" >&8
wait_line "$t.out" 30
head -c 5000 /dev/urandom > "$t-m/new.pth"; mv "$t-m/new.pth" "$t-m/model.pth"
start=$SECONDS
pkill -9 -f "encoderd --listen ipc://$t/"
echo "$img" >&8 # in flight while encoderd is down
wait "$cpid"; rc=$?
took=$((SECONDS - start))
exec 8>&-
ok "an encoderd that dies at every restart ends the run in ${took} s with exit 2 (rc $rc; 124 = still running at 60 s)" \
   "[ $rc = 2 ] && [ $took -le 30 ]"
ok "the run says why: encoderd's own reason from its log, and that vgpt-cli gave up" \
   "grep -q 'encoderd.*not a checkpoint vgpt reads' '$t.err' && grep -q 'encoderd died .* giving up' '$t.err'"
ok "restarts were few and backed off ($(grep -c 'restarting it in' "$t.err") restarts)" \
   "[ \$(grep -c 'restarting it in' '$t.err') -le 5 ] && grep -q 'restarting it in 0.2 s' '$t.err'"
ok "after giving up: no private directory and no daemon left" "gone_within '$t' 10"

# --- a daemon that comes up and is killed again and again: 5 restarts
# within a minute at most, then exit 2
t=$tmp/flap; mkdir -p "$t"; mkfifo "$t.in"
TMPDIR=$t timeout 90 "$build/vgpt-cli" $flags --model "$m" < "$t.in" > "$t.out" 2> "$t.err" &
cpid=$!
exec 8> "$t.in"; echo "$img" >&8
wait_line "$t.out" 30
for i in $(seq 1 200); do
    kill -0 "$cpid" 2>/dev/null || break
    pkill -9 -f "preprocd --listen ipc://$t/"
    sleep 0.2
done
wait "$cpid"; rc=$?
exec 8>&-
ok "preprocd killed over and over: the run gives up with exit 2 (rc $rc) after at most 5 restarts ($(grep -c 'restarting it in' "$t.err"))" \
   "[ $rc = 2 ] && [ \$(grep -c 'restarting it in' '$t.err') -le 5 ] && grep -q 'preprocd died .* giving up' '$t.err'"
ok "after giving up: no private directory and no daemon left" "gone_within '$t' 10"

# --- thread counts
cli=$build/vgpt-cli
if taskset -c 0 true 2>/dev/null; then
    taskset -c 0 "$cli" --in-process --verbose --model "$m" < /dev/null 2> "$tmp/ts.err"
    ok "under taskset -c 0 the default is 1 thread ($(grep -o 'threads: [0-9]*' "$tmp/ts.err"))" \
       "grep -q 'threads: 1 ' '$tmp/ts.err'"
    t=$tmp/ts; mkdir -p "$t"; mkfifo "$t.in"
    TMPDIR=$t taskset -c 0 "$cli" $flags --model "$m" < "$t.in" > /dev/null 2>&1 &
    cpid=$!
    exec 8> "$t.in"
    for i in $(seq 1 100); do [ "$(daemons_of "$t")" = 3 ] && break; sleep 0.1; done
    args=$(pgrep -af "$t/" | grep -E 'encoderd|decoderd' | grep -o -- '--threads [0-9]*' | sort | uniq | tr '\n' ' ')
    exec 8>&-; wait "$cpid"
    ok "under taskset -c 0 the embedded encoderd and decoderd get 1 thread each ($args)" "[ '$args' = '--threads 1 ' ]"
    # 64 threads on one CPU: the caller does the work, the rest sleep (before: they spun, 30x the CPU time)
    TIMEFORMAT=%U+%S
    t1=$( { time taskset -c 0 "$cli" --in-process $flags --threads 1 --model "$m" < "$tmp/l14" > "$tmp/t1.out" 2>/dev/null; } 2>&1 )
    t64=$( { time timeout 120 taskset -c 0 "$cli" --in-process $flags --threads 64 --model "$m" < "$tmp/l14" > "$tmp/t64.out" 2>/dev/null; } 2>&1 )
    ok "taskset -c 0 --threads 64 gives the same captions with at most 3x the CPU time of --threads 1 ($t64 vs $t1 s)" \
       "cmp -s '$tmp/t1.out' '$tmp/t64.out' && awk 'BEGIN { exit !(($t64) <= 3 * ($t1) + 0.5) }'"
else
    echo "SKIP: taskset cannot pin to CPU 0 here: affinity tests not run"
fi
# 1000 threads (before: each woke all the others per job, which spun; 3 minutes here)
"$cli" --in-process $flags --max-tokens 20 --model "$m" < "$tmp/l14" > "$tmp/t2.out" 2>/dev/null
timeout 60 "$cli" --in-process $flags --max-tokens 20 --threads 1000 --model "$m" < "$tmp/l14" > "$tmp/t1000.out" 2>/dev/null
rc=$?
ok "--threads 1000 finishes (rc $rc; 124 = not within 60 s) with the same captions as the default" \
   "[ $rc = 0 ] && cmp -s '$tmp/t2.out' '$tmp/t1000.out'"

# cgroup CPU quota of 1 CPU on a parent cgroup (v2 cpu.max or v1 cpu.cfs_quota_us): default 1 thread
for base in /sys/fs/cgroup /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do
    [ -w "$base" ] || continue
    d=$base/vgpt-lifecycle-$$
    mkdir "$d" 2>/dev/null || continue
    if { [ -f "$d/cpu.max" ] && echo "100000 100000" > "$d/cpu.max"; } 2>/dev/null ||
       { [ -f "$d/cpu.cfs_quota_us" ] && echo 100000 > "$d/cpu.cfs_period_us" && echo 100000 > "$d/cpu.cfs_quota_us"; } 2>/dev/null; then
        cg=$d; break
    fi
    rmdir "$d" 2>/dev/null
done
if [ -n "$cg" ] && mkdir "$cg/child" 2>/dev/null; then child=$cg/child; fi
if [ -n "$child" ] && sh -c "echo \$\$ > '$child/cgroup.procs' && exec '$cli' --in-process --verbose --model '$m'" \
        < /dev/null 2> "$tmp/cg.err"; then
    ok "in a cgroup whose parent has a 1-CPU quota the default is 1 thread ($(grep -o 'threads: [0-9]*' "$tmp/cg.err"))" \
       "grep -q 'threads: 1 ' '$tmp/cg.err'"
else
    # not a SKIP: tests/test_pool.c walks a fake hierarchy with the same code
    echo "info: no writable cgroup with a CPU quota here; test_pool checks the quota walk on a fake hierarchy"
fi
[ -n "$child" ] && rmdir "$child" 2>/dev/null && child=
[ -n "$cg" ] && rmdir "$cg" 2>/dev/null && cg=

# idle pool workers and OpenBLAS threads sleep: no CPU time while vgpt-cli waits on stdin
mkfifo "$tmp/idle.in"
"$cli" --in-process $flags --batch 1 --threads 8 --model "$m" < "$tmp/idle.in" > "$tmp/idle.out" 2>/dev/null &
cpid=$!
exec 8> "$tmp/idle.in"; echo "$img" >&8
wait_line "$tmp/idle.out" 30; sleep 0.5
a=$(awk '{print $14 + $15}' "/proc/$cpid/stat"); sleep 2; z=$(awk '{print $14 + $15}' "/proc/$cpid/stat")
exec 8>&-; wait "$cpid"
ok "8 idle threads burn no CPU while vgpt-cli waits on stdin ($((z - a)) ticks in 2 s)" "[ $((z - a)) -le 5 ]"

"$cli" --help > "$tmp/help"
ok "--help says that a stopped daemon stalls a run unless --timeout is set" "grep -q 'SIGSTOP' '$tmp/help'"
