#!/usr/bin/env bash
# hostile_io.sh - what a careless or hostile user can hand vgpt-cli and
# preprocd, in both modes (--in-process and the embedded pipeline):
#   FIFOs, devices, sockets and directories where a file is expected (the
#   image paths, --model, config.json, the tokenizer files, preprocd --once):
#   a one-line error, never a blocked open;
#   a full or closed stdout: exit 2 at once with one message; stdin that
#   cannot be read; NUL bytes in the input (-0/--null for find -print0);
#   tabs, newlines and backslashes in paths and captions (TSV escapes);
#   one set of limits (--max-pixels, --batch, file size) and the same error
#   text in both modes, naming the path the user gave, with the reason kept
#   however long the path; contradictory options.
# Anything that could block runs under `timeout`, so a regression fails
# instead of hanging.  Uses a tiny random checkpoint (no PyTorch needed).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
cli=$build/vgpt-cli
T=${VGPT_BLOCK_S:-30} # seconds before a run counts as blocked
img=$root/examples/rocket.jpg
run_cli() { timeout $T "$cli" "$@" --greedy --max-tokens 4 --no-progress; }
modes=(--in-process --pipeline)
mode_args() { [ "$1" = --in-process ] && echo --in-process; } # the pipeline is the default

mkdir -p "$tmp/m"; "$build/vgpt-mkckpt" --preset tiny --seed 3 "$tmp/m/model.pth" >/dev/null 2>&1
m=$tmp/m/model.pth
ok "vgpt-mkckpt writes a tiny checkpoint" "[ -s '$m' ]"

# --- D3: file types.  A FIFO, a device, a socket, a directory as image paths.
mkfifo "$tmp/fifo.jpg"
/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/sock.jpg"
mkdir "$tmp/dir.jpg"
printf '%s\n' "$img" "$tmp/fifo.jpg" /dev/zero "$tmp/sock.jpg" "$tmp/dir.jpg" > "$tmp/types.list"
for mode in "${modes[@]}"; do
    run_cli $(mode_args $mode) --model "$m" < "$tmp/types.list" > "$tmp/types$mode" 2>/dev/null; rc=$?
    ok "D3 $mode: a FIFO, /dev/zero, a socket and a directory as image paths are error lines saying what each is" \
        "[ $rc = 1 ] && [ \$(wc -l < '$tmp/types$mode') = 5 ] && sed -n 1p '$tmp/types$mode' | grep -qv ERROR &&
         grep -qF '$tmp/fifo.jpg	ERROR: $tmp/fifo.jpg: is a FIFO (named pipe), expected an image' '$tmp/types$mode' &&
         grep -qF '/dev/zero	ERROR: /dev/zero: is a character device, expected an image' '$tmp/types$mode' &&
         grep -qF '$tmp/sock.jpg	ERROR: $tmp/sock.jpg: is a socket, expected an image' '$tmp/types$mode' &&
         grep -qF '$tmp/dir.jpg	ERROR: $tmp/dir.jpg: is a directory, expected an image' '$tmp/types$mode'"
done
ok "D3: both modes give the same lines for them" "cmp -s '$tmp/types--in-process' '$tmp/types--pipeline'"

for what in "$tmp/fifo.jpg:is a FIFO" "/dev/zero:is a character device" "$tmp/sock.jpg:is a socket"; do
    f=${what%%:*}
    timeout $T "$build/preprocd" --once "$f" > "$tmp/pixels" 2> "$tmp/err"; rc=$?
    ok "D3 preprocd --once $f: exit 1 at once, one line: '${what#*:}'" \
        "[ $rc = 1 ] && [ \$(wc -l < '$tmp/err') = 1 ] && grep -qF '$f: ${what#*:}' '$tmp/err' && [ ! -s '$tmp/pixels' ]"
done

# --model, config.json and the tokenizer's files as FIFOs (and --model as a folder without weights)
mkdir -p "$tmp/cfg" "$tmp/vocab/tokenizer" "$tmp/merges/tokenizer"
for d in cfg vocab merges; do cp "$m" "$tmp/$d/model.pth"; done
cp "$tmp/m/config.json" "$tmp/vocab/"; cp "$tmp/m/config.json" "$tmp/merges/"
mkfifo "$tmp/model.pth" "$tmp/cfg/config.json" "$tmp/vocab/tokenizer/vocab.json" "$tmp/merges/tokenizer/merges.txt"
cp "$root/data/encoder.json" "$tmp/merges/tokenizer/vocab.json"
for mode in "${modes[@]}"; do
    for c in "$tmp/model.pth:$tmp/model.pth: is a FIFO" "$tmp/m:$tmp/m: a folder without model.safetensors or pytorch_model.bin" \
             "$tmp/cfg/model.pth:config.json: is a FIFO" "$tmp/vocab/model.pth:vocab.json: is a FIFO" \
             "$tmp/merges/model.pth:merges.txt: is a FIFO"; do
        model=${c%%:*} want=${c#*:}
        echo "$img" | run_cli $(mode_args $mode) --model "$model" > "$tmp/out" 2> "$tmp/err"; rc=$?
        ok "D3 $mode --model ${model#$tmp/}: exit 2 at once, one line '$want'" \
            "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ] && grep -qF '$want' '$tmp/err' && [ ! -s '$tmp/out' ]"
    done
done

# --- D5: results that cannot be written stop the run at once, exit 2.  stdin
# stays open (one line written, never closed) so a run that goes on reading
# instead of stopping is seen.
held() { # held OUT ARGS...: $rc, and $stopped=1 if it exited with stdin still open
    local fifo=$tmp/held.fifo pid i
    rm -f "$fifo"; mkfifo "$fifo"
    timeout 60 "$cli" "${@:2}" < "$fifo" > "$1" 2> "$tmp/err" & pid=$!
    exec 8> "$fifo"
    printf '%s\n%s\n' "$img" "$img" >&8
    stopped=0
    for i in $(seq 1 $((T * 10))); do kill -0 $pid 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
    exec 8>&-
    wait $pid; rc=$?
}
for mode in "${modes[@]}"; do
    held /dev/full $(mode_args $mode) --model "$m" --greedy --max-tokens 4 --batch 1 --no-progress
    ok "D5 $mode > /dev/full: exit 2 at once with 'writing results to standard output: No space left on device'" \
        "[ $rc = 2 ] && [ $stopped = 1 ] && [ \$(wc -l < '$tmp/err') = 1 ] &&
         grep -qx 'vgpt-cli: writing results to standard output: No space left on device' '$tmp/err'"
done

"$cli" --help > /dev/full 2> "$tmp/err"; rc=$?
ok "D5 --help > /dev/full: exit 2 with the reason" "[ $rc = 2 ] && grep -q 'No space left on device' '$tmp/err'"
"$build/preprocd" --help > /dev/full 2> "$tmp/err"; rc=$?
ok "D5 preprocd --help > /dev/full: exit 2 with the reason" "[ $rc = 2 ] && grep -q 'No space left on device' '$tmp/err'"

# --- D6: NUL bytes.  Without -0 a NUL-separated list is one error line, never cut.
mkdir -p "$tmp/find" "$tmp/find2"
cp "$img" "$tmp/find2/a.jpg"; cp "$img" "$tmp/find2/with space.jpg"
cp "$img" "$tmp/find/a.jpg"; cp "$img" "$tmp/find/with space.jpg"; cp "$img" "$tmp/find/"$'new\nline.jpg'
cat > "$tmp/find.py" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["path"].rsplit("/", 1)[1] for r in rows) == ["a.jpg", "new\nline.jpg", "with space.jpg"], rows
assert all("caption" in r for r in rows), rows
PY
"$cli" --help > "$tmp/help"
ok "D6 --help documents -0/--null" "grep -q -- '-0, --null' '$tmp/help'"
for mode in "${modes[@]}"; do
    find "$tmp/find2" -name '*.jpg' -print0 | run_cli $(mode_args $mode) --model "$m" > "$tmp/out" 2> "$tmp/err"; rc=$?
    ok "D6 $mode: NUL-separated input without -0 is one error line pointing to -0/--null, exit 1" \
        "[ $rc = 1 ] && [ \$(wc -l < '$tmp/out') = 1 ] && grep -q 'ERROR: line 1 of standard input contains a NUL byte.*-0/--null' '$tmp/out' &&
         grep -qF 'a.jpg\\0' '$tmp/out'"
    find "$tmp/find" -name '*.jpg' -print0 | run_cli $(mode_args $mode) -0 --model "$m" --format jsonl > "$tmp/out" 2> "$tmp/err"; rc=$?
    ok "D6 $mode -0: every path of find -print0 is captioned (a space and a newline in names)" \
        "[ $rc = 0 ] && /usr/bin/python3 '$tmp/find.py' '$tmp/out'"
done

# --- D7: a read error on stdin is reported, exit 2
for mode in "${modes[@]}"; do
    run_cli $(mode_args $mode) --model "$m" < / > "$tmp/out" 2> "$tmp/err"; rc=$?
    ok "D7 $mode < / (a directory): exit 2, 'reading standard input: Is a directory'" \
        "[ $rc = 2 ] && grep -qx 'vgpt-cli: reading standard input: Is a directory' '$tmp/err'"
done

# --- D9: TSV escapes in both columns.  A path with a tab, a newline, a CR and
# a backslash (a missing file: its error line repeats the path).
ok "D9 --help documents the TSV escapes" "grep -qF 'written as \\\\, \\t, \\n and \\r' '$tmp/help'"
printf '%s\0' "$tmp/t"$'\tab\r\nc\\d.jpg' > "$tmp/odd.list"
for mode in "${modes[@]}"; do
    run_cli $(mode_args $mode) -0 --model "$m" < "$tmp/odd.list" > "$tmp/out" 2>/dev/null; rc=$?
    ok "D9 $mode: a path with tab, newline, CR and backslash: one line, two columns, escaped as \\t \\n \\r \\\\" \
        "[ $rc = 1 ] && [ \$(wc -l < '$tmp/out') = 1 ] && [ \$(tr -cd '\t' < '$tmp/out' | wc -c) = 1 ] &&
         grep -qF '$tmp/t\\tab\\r\\nc\\\\d.jpg	ERROR: $tmp/t\\tab\\r\\nc\\\\d.jpg: cannot open' '$tmp/out'"
done
# A caption with a tab, a newline, a CR and a backslash: a tokenizer whose
# text for the first token generated holds them.
mkdir -p "$tmp/tok/tokenizer"; cp "$m" "$tmp/m/config.json" "$tmp/tok/"
echo "$img" | run_cli --in-process --model "$m" --format jsonl > "$tmp/plain.jsonl" 2>/dev/null
/usr/bin/python3 - "$root/data/encoder.json" "$tmp/plain.jsonl" "$tmp/tok/tokenizer/vocab.json" <<'PY'
import json, sys
vocab = json.load(open(sys.argv[1]))
first = json.loads(open(sys.argv[2]).readline())["tokens"][0]
name = {v: k for k, v in vocab.items()}[first]
del vocab[name]
vocab["x\u0109y\u010az\u010d\\w"] = first  # GPT-2 byte-level: \t \n \r, and a backslash as itself
json.dump(vocab, open(sys.argv[3], "w"))
PY
cat > "$tmp/unescape.py" <<'PY'
import json, sys
line = open(sys.argv[1], newline="").readline()
path, cap = line.rstrip("\n").split("\t")
esc = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "0": "\0"}
out, i = "", 0
while i < len(cap):
    if cap[i] == "\\":
        out += esc[cap[i + 1]]
        i += 2
    else:
        out += cap[i]
        i += 1
want = json.loads(open(sys.argv[2]).readline())["caption"]
assert out == want and "\n" in want and "\t" in want, (out, want)
PY
for mode in "${modes[@]}"; do
    printf '%s\n' "$img" "$img" | run_cli $(mode_args $mode) --model "$tmp/tok/model.pth" > "$tmp/cap.tsv" 2>/dev/null; rc=$?
    printf '%s\n' "$img" | run_cli $(mode_args $mode) --model "$tmp/tok/model.pth" --format jsonl > "$tmp/cap.jsonl" 2>/dev/null
    ok "D9 $mode: a caption with tab, newline, CR, backslash stays on its line, escaped, equal to jsonl's once unescaped" \
        "[ $rc = 0 ] && [ \$(wc -l < '$tmp/cap.tsv') = 2 ] && grep -qF 'x\\ty\\nz\\r\\\\w' '$tmp/cap.tsv' &&
         /usr/bin/python3 '$tmp/unescape.py' '$tmp/cap.tsv' '$tmp/cap.jsonl'"
done

# --- D10: one set of limits, the same in both modes
for mode in "${modes[@]}"; do
    for args in "--max-pixels 100000001" "--batch 65"; do
        echo "$img" | run_cli $(mode_args $mode) --model "$m" $args > "$tmp/out" 2> "$tmp/err"; rc=$?
        ok "D10 $mode $args: a usage error naming the limit" \
            "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ] && grep -q -- '${args%% *}' '$tmp/err' && [ ! -s '$tmp/out' ]"
    done
done
printf '%s\n' "$img" "$img" "$img" | run_cli --model "$m" --batch 64 > "$tmp/out" 2> "$tmp/err"; rc=$?
ok "D10 --pipeline --batch 64 (the most) captions" "[ $rc = 0 ] && [ \$(wc -l < '$tmp/out') = 3 ]"
timeout $T "$build/preprocd" --once "$img" --max-pixels 100000001 > "$tmp/pixels" 2> "$tmp/err"; rc=$?
ok "D10 preprocd --max-pixels 100000001: usage error" "[ $rc = 2 ]"
cp "$img" "$tmp/big.jpg"; truncate -s $((61 << 20)) "$tmp/big.jpg"
printf '%s\n' "$tmp/big.jpg" "$img" > "$tmp/big.list"
for mode in "${modes[@]}"; do
    run_cli $(mode_args $mode) --model "$m" < "$tmp/big.list" > "$tmp/big$mode" 2>/dev/null; rc=$?
    ok "D10 $mode: a 61 MiB file is refused naming the 60 MiB limit" \
        "[ $rc = 1 ] && grep -qF '$tmp/big.jpg	ERROR: $tmp/big.jpg: file is 63963136 bytes, over the limit of 60 MiB' '$tmp/big$mode'"
done
ok "D10: the same lines in both modes" "cmp -s '$tmp/big--in-process' '$tmp/big--pipeline'"

# --- D13, D14: every error line names the path given and what is wrong, in
# the same words in both modes, however long the path.
: > "$tmp/empty.jpg"
printf 'not an image at all' > "$tmp/text.jpg"
head -c 3000 "$img" > "$tmp/truncated.jpg"
long=$tmp; for i in $(seq 1 1400); do long=$long/.; done # ~2800 bytes: within PATH_MAX
huge=$tmp; for i in $(seq 1 2500); do huge=$huge/.; done # over PATH_MAX
printf '%s\n' "$tmp/empty.jpg" "$tmp/text.jpg" "$tmp/truncated.jpg" "$tmp/missing.jpg" "$long/text.jpg" \
    "$huge/text.jpg" "$img" > "$tmp/errs.list"
for mode in "${modes[@]}"; do
    run_cli $(mode_args $mode) --model "$m" < "$tmp/errs.list" > "$tmp/errs$mode" 2>/dev/null; rc=$?
    ok "D13 $mode: a 0-byte file is 'empty file (expected an image)'" \
        "[ $rc = 1 ] && grep -qxF '$tmp/empty.jpg	ERROR: $tmp/empty.jpg: empty file (expected an image)' '$tmp/errs$mode'"
    ok "D13 $mode: each error line's message starts with its path (no 'request N', no wire field)" \
        "[ \$(wc -l < '$tmp/errs$mode') = 7 ] && ! grep -q -e 'request [0-9]' -e 'field \"' '$tmp/errs$mode' &&
         ! awk -F'\t' '\$2 ~ /^ERROR: / && index(\$2, \"ERROR: \" substr(\$1, 1, 100)) != 1 {bad=1} END {exit !bad}' '$tmp/errs$mode'"
    ok "D14 $mode: a path of 2800 bytes keeps the whole message: 'not an image (expected ...)'" \
        "sed -n 5p '$tmp/errs$mode' | grep -qF '$long/text.jpg: not an image (expected JPEG'"
    ok "D14 $mode: a path over 4096 bytes: the message keeps its start and its reason, cut in the middle" \
        "sed -n 6p '$tmp/errs$mode' | cut -f2 | grep -q '^ERROR: $tmp/\\./.*\\.\\.\\..*/text.jpg: cannot open: File name too long\$' &&
         [ \$(sed -n 6p '$tmp/errs$mode' | cut -f2 | wc -c) -le 4200 ]"
done
ok "D13: both modes give the same error lines" "cmp -s '$tmp/errs--in-process' '$tmp/errs--pipeline'"

# --- D15: heads that cannot be inferred are explained, never "(-1 x -1)"
mkdir -p "$tmp/nocfg"
"$build/vgpt-mkckpt" --preset tiny --seed 3 --no-config --wrapper minimal "$tmp/nocfg/model.pth" >/dev/null 2>&1
"$cli" --in-process --model "$tmp/nocfg/model.pth" < /dev/null > /dev/null 2> "$tmp/err"; rc=$?
ok "D15 no config.json and heads not inferable: one line saying what is missing, no -1" \
    "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ] && ! grep -q -- '-1' '$tmp/err' &&
     grep -q 'perceiver_heads and perceiver_dim_head are not set (there is no config.json beside the checkpoint)' '$tmp/err'"

# --- D17: an unusable TMPDIR is named as such
echo "$img" | TMPDIR=$tmp/no-such-dir run_cli --model "$m" > /dev/null 2> "$tmp/err"; rc=$?
ok "D17 TMPDIR that does not exist: exit 2 naming TMPDIR, not the mkdtemp template" \
    "[ $rc = 2 ] && grep -qF 'TMPDIR=$tmp/no-such-dir: No such file or directory' '$tmp/err' && ! grep -q XXXXXX '$tmp/err'"

# --- contradictory options are usage errors
while IFS='|' read -r args a b; do
    # shellcheck disable=SC2086
    echo "$img" | timeout $T "$cli" --model "$m" --max-tokens 4 $args > "$tmp/out" 2> "$tmp/err"; rc=$?
    ok "contradiction '$args': exit 2, one line naming $a and $b" \
        "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ] && grep -q -- '$a' '$tmp/err' && grep -q -- '$b' '$tmp/err' && [ ! -s '$tmp/out' ]"
done <<'EOF'
--greedy --temperature 0.5|--greedy|--temperature
--temperature 0.5 --greedy|--greedy|--temperature
--beam 2 --top-k 5|--beam|--top-k
--greedy --top-p 0.5|--greedy|--top-p
--beam 4 --seed 7|--beam|--seed
--greedy --sample|--greedy|--sample
--sample --length-penalty 2|--sample|--length-penalty
--greedy --early-stopping true|--greedy|--early-stopping
--in-process --connect tcp://127.0.0.1:1 --reply tcp://127.0.0.1:2|--in-process|--connect
--in-process --reply tcp://127.0.0.1:2|--in-process|--reply
EOF
echo "$img" | timeout $T "$cli" --model "$m" --early-stopping sometimes > "$tmp/out" 2> "$tmp/err"; rc=$?
ok "--early-stopping sometimes: exit 2 naming the values it takes" \
    "[ $rc = 2 ] && grep -qF \"invalid value 'sometimes' for --early-stopping: expected false, true or never\" '$tmp/err'"
echo "$img" | timeout $T "$cli" --in-process --model "$m" --max-tokens 4 --sample --temperature 0.5 --top-k 5 --seed 3 \
    > "$tmp/out" 2> "$tmp/err"; rc=$?
ok "sampling parameters together with --sample still caption" "[ $rc = 0 ] && [ \$(wc -l < '$tmp/out') = 1 ]"
