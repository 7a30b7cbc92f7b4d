"""tty_render.py FILE - print FILE's lines as a terminal would show them.

Handles what vgpt-cli writes: CR (back to column 0), ESC [ K (erase to the end
of the line) and newline; any other escape sequence is dropped. Used by
tests/cli.sh to see whether the progress line garbles result lines."""
import re
import sys

data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
lines, cur, col = [], [], 0
for tok in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r\n|\r|\n|[^\x1b\r\n]+|\x1b", data):
    if tok in ("\n", "\r\n"):
        lines.append("".join(cur)); cur, col = [], 0
    elif tok == "\r":
        col = 0
    elif tok == "\x1b[K":
        del cur[col:]
    elif tok.startswith("\x1b"):
        pass
    else:
        for ch in tok:
            if col < len(cur): cur[col] = ch
            else: cur.append(ch)
            col += 1
if cur: lines.append("".join(cur))
for l in lines:
    if not l.startswith("Script "): print(l)
