#!/usr/bin/env bash
# cli.sh - vgpt-cli's contract: one line per input line in input order, error
# lines for bad inputs, exit codes 0/1/2, CRLF and blank lines, jsonl shape,
# same flags -> same output.  Uses a tiny random checkpoint from vgpt-mkckpt
# (no PyTorch needed).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
imgs=${VGPT_SHARED:-$root/../shared}/testdata/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
cli=$build/vgpt-cli

mkdir -p "$tmp/m"; "$build/vgpt-mkckpt" --preset tiny --seed 3 "$tmp/m/model.pth" >/dev/null 2>&1
ok "vgpt-mkckpt writes a tiny checkpoint" "[ -s '$tmp/m/model.pth' ]"
m=$tmp/m/model.pth

"$cli" --help > "$tmp/help" 2>&1; rc=$?
ok "--help exits 0 and documents --beam, --sample, --format" "[ $rc = 0 ] && grep -q -- --beam '$tmp/help' && grep -q -- --sample '$tmp/help' && grep -q -- --format '$tmp/help'"
"$cli" --model "$m" --beam 0 < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "a bad option value exits 2 with a message" "[ $rc = 2 ] && grep -q 'beam' '$tmp/err'"
env -u VGPT_MODEL "$cli" < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "no model exits 2 and says how to give one" "[ $rc = 2 ] && grep -q VGPT_MODEL '$tmp/err'"
"$cli" --model "$tmp/nope.pth" < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "a missing checkpoint exits 2 naming the file" "[ $rc = 2 ] && grep -q nope.pth '$tmp/err'"

# --max-tokens past the model's context (32 for the tiny preset) is a usage
# error in every mode, before any work; the default (50) is capped quietly.
for mode in --in-process ""; do
    echo "$root/examples/rocket.jpg" | "$cli" $mode --model "$m" --greedy --max-tokens 33 > "$tmp/out" 2> "$tmp/err"; rc=$?
    ok "--max-tokens 33 ${mode:-(pipeline)} beyond the context of 32: exit 2 naming both" \
        "[ $rc = 2 ] && grep -q 'max-tokens 33' '$tmp/err' && grep -q 'context of 32' '$tmp/err' && [ ! -s '$tmp/out' ]"
    echo "$root/examples/rocket.jpg" | "$cli" $mode --model "$m" --greedy --max-tokens 32 > "$tmp/out" 2>/dev/null; rc=$?
    ok "--max-tokens 32 ${mode:-(pipeline)} (the whole context) captions" "[ $rc = 0 ] && [ \$(wc -l < '$tmp/out') = 1 ]"
done
echo "$root/examples/rocket.jpg" | "$cli" --in-process --model "$m" --greedy > "$tmp/out" 2> "$tmp/err"; rc=$?
ok "the default --max-tokens (50) on a 32-token context captions without complaint" "[ $rc = 0 ] && [ ! -s '$tmp/err' ]"

# OpenBLAS's idle threads must not spin between batches: vgpt-cli (and each
# daemon) re-executes itself with OPENBLAS_THREAD_TIMEOUT set, keeping a user's value.
mkfifo "$tmp/fifo"
for want in 4 9; do
    if [ "$want" = 4 ]; then env -u OPENBLAS_THREAD_TIMEOUT "$cli" --in-process --model "$m" < "$tmp/fifo" > /dev/null 2>&1 &
    else OPENBLAS_THREAD_TIMEOUT=9 "$cli" --in-process --model "$m" < "$tmp/fifo" > /dev/null 2>&1 & fi
    pid=$!
    exec 9> "$tmp/fifo" # the cli now waits on stdin, after any re-exec
    sleep 1
    tr '\0' '\n' < /proc/$pid/environ > "$tmp/environ" 2>/dev/null
    exec 9>&-
    wait $pid
    ok "vgpt-cli runs with OPENBLAS_THREAD_TIMEOUT=$want" "grep -qx 'OPENBLAS_THREAD_TIMEOUT=$want' '$tmp/environ'"
done

if [ ! -d "$imgs/good" ]; then echo "SKIP: $imgs not found: image tests not run"; exit 0; fi
printf '%s\r\n' "$imgs/good/coffee.png" > "$tmp/list"
printf '\n%s\n' "$imgs/bad/empty.jpg" "$imgs/good/rocket.jpg" "$tmp/does-not-exist.jpg" "$imgs/good/jellyfish.jpg" >> "$tmp/list"
"$cli" --model "$m" --greedy --max-tokens 8 < "$tmp/list" > "$tmp/out.tsv" 2> "$tmp/err"; rc=$?
ok "some failed inputs -> exit 1" "[ $rc = 1 ]"
ok "one output line per non-blank input line" "[ \$(wc -l < '$tmp/out.tsv') = 5 ]"
ok "outputs are in input order (CR stripped)" "[ \"\$(cut -f1 '$tmp/out.tsv' | sed -n 1p)\" = '$imgs/good/coffee.png' ] && [ \"\$(cut -f1 '$tmp/out.tsv' | sed -n 5p)\" = '$imgs/good/jellyfish.jpg' ]"
ok "the empty file gets an error line" "sed -n 2p '$tmp/out.tsv' | grep -q 'ERROR: '"
ok "the missing file gets an error line" "sed -n 4p '$tmp/out.tsv' | grep -q 'ERROR: .*does-not-exist'"
ok "good images get a non-empty caption" "sed -n 3p '$tmp/out.tsv' | grep -qv 'ERROR' && [ -n \"\$(sed -n 3p '$tmp/out.tsv' | cut -f2)\" ]"

"$cli" --model "$m" --greedy --max-tokens 8 --format jsonl < "$tmp/list" > "$tmp/out.jsonl" 2>/dev/null
ok "jsonl lines parse and carry path+caption+tokens or path+error" "/usr/bin/python3 -c '
import json,sys
rows=[json.loads(l) for l in open(\"$tmp/out.jsonl\")]
assert len(rows)==5
assert all((\"caption\" in r and isinstance(r[\"tokens\"],list) and \"error\" not in r) or (\"error\" in r and \"caption\" not in r) for r in rows)
assert \"error\" in rows[1] and \"tokens\" in rows[2] and len(rows[2][\"tokens\"])>0
'"
ok "tsv and jsonl give the same captions" "[ \"\$(sed -n 3p '$tmp/out.tsv' | cut -f2)\" = \"\$(/usr/bin/python3 -c 'import json;print(json.loads(open(\"$tmp/out.jsonl\").readlines()[2])[\"caption\"])')\" ]"

grep -v -e empty -e does-not "$tmp/list" | grep . > "$tmp/good"
"$cli" --model "$m" --sample --seed 5 --max-tokens 8 --batch 1 < "$tmp/good" > "$tmp/s1" 2>/dev/null; rc=$?
"$cli" --model "$m" --sample --seed 5 --max-tokens 8 --batch 3 < "$tmp/good" > "$tmp/s2" 2>/dev/null
ok "all inputs captioned -> exit 0" "[ $rc = 0 ]"
ok "sampling with a seed repeats exactly, whatever the batch size" "cmp -s '$tmp/s1' '$tmp/s2'"
"$cli" --model "$m" --max-tokens 8 --batch 1 < "$tmp/good" > "$tmp/b1" 2>/dev/null
"$cli" --model "$m" --max-tokens 8 --batch 3 < "$tmp/good" > "$tmp/b3" 2>/dev/null
ok "default beam search gives the same captions at batch 1 and 3" "cmp -s '$tmp/b1' '$tmp/b3'"

# On a terminal the progress line (stderr) and the result lines (stdout) share
# one screen: the progress line must be erased before results and redrawn
# after, never left glued to the front of a result line.  tests/ref/tty_render.py
# replays the bytes the way a terminal draws them (CR, erase-to-end-of-line).
for mode in "" "--in-process"; do
    script -q -e -c "'$cli' $mode --model '$m' --greedy --max-tokens 4 --batch 1 --progress < '$tmp/good'" "$tmp/tty" > /dev/null 2>&1
    /usr/bin/python3 "$root/tests/ref/tty_render.py" "$tmp/tty" > "$tmp/screen"
    ok "on a terminal ${mode:-(pipeline)} each result line starts with its path" \
        "[ \$(grep -c \$'\t' '$tmp/screen') = \$(wc -l < '$tmp/good') ] && ! grep \$'\t' '$tmp/screen' | grep -qv '^/'"
    ok "on a terminal ${mode:-(pipeline)} the progress line never shares a line with a result" \
        "grep -q 'img/s' '$tmp/screen' && ! grep 'img/s' '$tmp/screen' | grep -q \$'\t'"
done
"$cli" --in-process --model "$m" --greedy --max-tokens 4 --progress < "$tmp/good" > "$tmp/out.file" 2> "$tmp/err.file"
ok "into a file the results carry no terminal escapes" "! grep -q \$'\033' '$tmp/out.file' && ! grep -q \$'\033' '$tmp/err.file'"
