#!/usr/bin/env bash
# run.sh - runs every test (C binaries given as arguments, then tests/*.sh
# scripts except this one) and prints the closing "N passed, N failed".
#
# A test reports checks as lines "PASS: ..." / "FAIL: ..."; a test that exits
# non-zero without printing a FAIL line counts as one failure, so a crash can
# never pass.  SKIP lines are counted separately and never as passes.
# VGPT_ONLY=NAME runs just the test called NAME (tests/NAME.sh or the
# binary NAME), as `make check T=NAME` does.
set -u
here=$(cd "$(dirname "$0")" && pwd)
passed=0; failed=0; skipped=0
logdir=${VGPT_TEST_LOG:-$(mktemp -d)}
run_one() {
    local name=$1; shift
    local log="$logdir/$(basename "$name").log"
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    local p f s
    p=$(grep -c '^PASS:' "$log"); f=$(grep -c '^FAIL:' "$log"); s=$(grep -c '^SKIP:' "$log")
    grep -E '^(FAIL|SKIP):' "$log" | sed 's/^/   /'
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "   FAIL: $name exited $rc"; tail -n 20 "$log" | sed 's/^/   | /'
    fi
    echo "   $p passed, $f failed, $s skipped"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
only=${VGPT_ONLY:-}
for t in "$@"; do
    [ -n "$only" ] && [ "$(basename "$t")" != "$only" ] && continue
    run_one "$t" "$t"
done
for s in "$here"/*.sh; do
    [ "$(basename "$s")" = run.sh ] && continue
    [ -n "$only" ] && [ "$(basename "$s" .sh)" != "$only" ] && continue
    run_one "$s" bash "$s"
done
if [ -n "$only" ] && [ $((passed + failed + skipped)) = 0 ]; then
    echo "no test called '$only' (tests/$only.sh or tests/$only.c)"; failed=1
fi
echo "test logs: $logdir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
