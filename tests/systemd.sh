#!/usr/bin/env bash
# systemd.sh - `make install` into temporary roots (PREFIX and DESTDIR), the
# installed files, the installed programs finding their tokenizer data, and
# `systemd-analyze verify` + `security --offline` on every unit, instantiated
# as vgpt-<daemon>@a.service with ExecStart pointing at the installed
# binaries.  A broken unit must fail the same verification.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
daemons="preprocd encoderd decoderd"
bins="vgpt-cli preprocd encoderd decoderd vgpt-keygen vgpt-mkckpt"

# --- 1. DESTDIR staging with the default-style PREFIX: nothing of DESTDIR leaks into files
make -s -C "$root" B="$build" install DESTDIR="$tmp/stage" PREFIX=/usr/local >"$tmp/install1.log" 2>&1
rc=$?
ok "make install DESTDIR=... PREFIX=/usr/local succeeds" "[ $rc = 0 ] || { tail -5 '$tmp/install1.log'; false; }"
s=$tmp/stage/usr/local
ok "binaries installed and executable ($bins)" "(for b in $bins; do [ -x '$s/bin/'\$b ] || exit 1; done)"
ok "units installed ($daemons)" "(for d in $daemons; do [ -f '$s/lib/systemd/system/vgpt-'\$d'@.service' ] || exit 1; done)"
ok "units' ExecStart names /usr/local/bin, no DESTDIR and no @...@ left" \
   "grep -q '^ExecStart=/usr/local/bin/encoderd ' '$s/lib/systemd/system/vgpt-encoderd@.service' && ! grep -rq '$tmp\|@[A-Z]*DIR@' '$s/lib/systemd/system'"
ok "example configs, sysusers.d entry, docs, tokenizer data" \
   "[ -f '$s/share/vgpt/examples/encoderd.conf.example' ] && [ -f '$s/share/vgpt/examples/preprocd.conf.example' ] && [ -f '$s/share/vgpt/examples/decoderd.conf.example' ] && [ -f '$s/lib/sysusers.d/vgpt.conf' ] && [ -f '$s/share/doc/vgpt/README.md' ] && cmp -s '$s/share/vgpt/encoder.json' '$root/data/encoder.json'"
ok "a man page per program, documenting its options" \
   "(for b in $bins; do [ -s '$s/share/man/man1/'\$b.1 ] || exit 1; done) && grep -q 'curve-peers' '$s/share/man/man1/encoderd.1' && grep -q 'timeout' '$s/share/man/man1/vgpt-cli.1'"
if command -v man >/dev/null 2>&1; then
    ok "man renders the installed encoderd(1)" "MANPATH='$s/share/man' man -P cat encoderd 2>/dev/null | grep -q -- '--curve-key'"
fi

# --- 2. PREFIX in a temp dir: the installed programs run from there
p=$tmp/prefix
make -s -C "$root" B="$build" install PREFIX="$p" >"$tmp/install2.log" 2>&1
ok "make install PREFIX=<tmp> succeeds" "[ $? = 0 ]"
mkdir -p "$tmp/m" && "$p/bin/vgpt-mkckpt" --preset tiny --seed 5 "$tmp/m/model.pth" >/dev/null 2>&1
img=$root/examples/rocket.jpg
echo "$img" > "$tmp/list"
"$p/bin/vgpt-cli" --in-process --greedy --max-tokens 4 --no-progress --model "$tmp/m/model.pth" < "$tmp/list" > "$tmp/out" 2>"$tmp/err"
ok "the installed vgpt-cli captions with the installed share/vgpt/encoder.json" \
   "[ \$(wc -l < '$tmp/out') = 1 ] && ! grep -q ERROR '$tmp/out'"
mv "$p/share/vgpt/encoder.json" "$p/share/vgpt/encoder.json.off"
"$p/bin/vgpt-cli" --in-process --greedy --max-tokens 4 --no-progress --model "$tmp/m/model.pth" < "$tmp/list" > "$tmp/out2" 2>&1
ok "... and fails without it (so that is the file it used)" "grep -q 'encoder.json' '$tmp/out2'"
mv "$p/share/vgpt/encoder.json.off" "$p/share/vgpt/encoder.json"
"$p/bin/vgpt-keygen" "$tmp/k" >/dev/null
ok "the installed vgpt-keygen writes k.key (0600) and k.pub" \
   "[ \$(stat -c %a '$tmp/k.key') = 600 ] && grep -q 'public-key' '$tmp/k.pub' && ! grep -q secret '$tmp/k.pub'"

# --- 3. systemd-analyze on the units installed under PREFIX (ExecStart exists there)
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not installed (Debian package systemd): units not verified"
    exit 0
fi
u=$tmp/units; mkdir -p "$u"
for d in $daemons; do cp "$p/lib/systemd/system/vgpt-$d@.service" "$u/vgpt-$d@a.service"; done
man_opt=--man=no
command -v man >/dev/null 2>&1 && man_opt=--man=yes
export MANPATH=$p/share/man
for d in $daemons; do
    ( cd "$u" && systemd-analyze verify $man_opt "$u/vgpt-$d@a.service" ) >"$tmp/verify-$d.log" 2>&1
    rc=$?
    ok "systemd-analyze verify vgpt-$d@a.service ($man_opt)" "[ $rc = 0 ] && ! grep -v 'Failed to read \$container\|docker' '$tmp/verify-$d.log' | grep -q .|| { cat '$tmp/verify-$d.log'; false; }"
    exp=$(cd "$u" && systemd-analyze security --offline=yes "$u/vgpt-$d@a.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    ok "vgpt-$d@a.service: systemd-analyze security exposure ${exp:-?} is at most 2.0" \
       "[ -n '$exp' ] && awk 'BEGIN {exit !($exp <= 2.0)}'"
    ok "vgpt-$d@a.service has the hardening a reviewer expects" \
       "(for k in Type=notify NotifyAccess=main Restart=on-failure User=vgpt NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes 'CapabilityBoundingSet=\$' 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' SystemCallFilter=@system-service LockPersonality=yes 'EnvironmentFile=/etc/vgpt/$d-%i.conf' RuntimeDirectory=vgpt MemoryMax; do grep -q \"\$k\" '$u/vgpt-$d@a.service' || { echo missing \$k; exit 1; }; done)"
done
ok "encoderd keeps its token cache in StateDirectory /var/lib/vgpt/encoderd-%i" \
   "grep -q '^StateDirectory=vgpt/encoderd-%i' '$u/vgpt-encoderd@a.service' && grep -q -- '--cache %S/vgpt/encoderd-%i' '$u/vgpt-encoderd@a.service'"

# the same verification must catch a broken unit
sed -e 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/encoderd|' "$u/vgpt-encoderd@a.service" > "$u/vgpt-broken@a.service"
( cd "$u" && systemd-analyze verify --man=no "$u/vgpt-broken@a.service" ) >"$tmp/verify-broken.log" 2>&1
ok "verify fails on a unit whose ExecStart binary is missing" "[ $? != 0 ]"
sed -e 's|^Type=notify|Type=notifyy|' "$u/vgpt-encoderd@a.service" > "$u/vgpt-typo@a.service"
( cd "$u" && systemd-analyze verify --man=no "$u/vgpt-typo@a.service" ) >"$tmp/verify-typo.log" 2>&1
ok "verify reports a misspelt setting" "grep -q 'notifyy' '$tmp/verify-typo.log'"
