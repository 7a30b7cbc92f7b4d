#!/usr/bin/env bash
# bench.sh - vgpt-bench reads each precision against its own floor: bf16's
# products against the bf16 rate it measures (not sgemm's), a bf16 step's
# weights at 2 bytes each (not fp32's 4), and the ViT's FLOPs counted from
# the model loaded.  Its speeds are `make bench`'s business; here, on a
# tiny checkpoint, only the arithmetic that turns them into ratios.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/common.bash"
bench=$build/vgpt-bench

"$bench" --help > /dev/null 2> "$tmp/err"; rc=$?
ok "vgpt-bench --help prints its usage (exit 2)" "[ $rc = 2 ] && grep -q 'usage: vgpt-bench CKPT' '$tmp/err'"
"$build/vgpt-mkckpt" --preset tiny --seed 3 "$tmp/model.pth" > /dev/null 2>&1
"$bench" "$tmp/model.pth" 2 fp16 > /dev/null 2> "$tmp/err"; rc=$?
ok "an unknown precision is a usage error naming the choices" "[ $rc = 2 ] && grep -q 'fp32, bf16 or fp32,bf16' '$tmp/err'"

# The relations every line must keep, whatever this host's speed; prints
# what broke, nothing when all hold.
check() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def one(bench, **kw):
    got = [r for r in rows if r.get("bench") == bench and all(r.get(k) == v for k, v in kw.items())]
    return got[0] if len(got) == 1 else sys.exit(f"want one {bench} {kw}, got {len(got)}")
def near(a, b, what):
    if abs(a - b) > 2e-3 * max(abs(a), abs(b)):
        sys.exit(f"{what}: {a} != {b}")
sgemm = one("machine", threads=2)["sgemm_gflops"]
bf = one("machine", precision="bf16")
if not (bf["bf16_gflops"] > 0 and bf["products"] not in ("", "none")):
    sys.exit(f"no bf16 rate: {bf}")
if bf["bf16_gflops"] == sgemm:  # two timings never agree to 0.1 GFLOP/s: sgemm's copied
    sys.exit(f"the bf16 rate is sgemm's: {sgemm}")
rate = {"fp32": sgemm, "bf16": bf["bf16_gflops"]}
vit = {p: one("encoder", precision=p, batch=8)["floor_s_per_image"] * rate[p] for p in rate}
near(vit["fp32"], vit["bf16"], "the ViT's GFLOP behind each precision's encoder floor")
if not 0 < vit["fp32"] < 5:  # ViT-B/16's 35.1 would mean a constant, not this tiny model's count
    sys.exit(f"the tiny ViT's GFLOP: {vit['fp32']}")
d32, d16 = one("decoder", precision="fp32", batch=1), one("decoder", precision="bf16", batch=1)
near(d16["weights_gb"] * 2, d32["weights_gb"], "a bf16 step's weight bytes, half fp32's")
near(d16["floor_ms"] * 2, d32["floor_ms"], "bf16's batch-1 bandwidth floor, half fp32's")
s32, s16 = one("decoder", precision="fp32", batch=16), one("decoder", precision="bf16", batch=16)
near(s16["compute_floor_ms"] * rate["bf16"], s32["compute_floor_ms"] * sgemm, "a batch-16 step's FLOPs at each rate")
for p in rate:
    c = one("captions", precision=p, images=64)
    near(c["floor_captions_per_s"] / rate[p], one("captions", precision="fp32", images=64)["floor_captions_per_s"] / sgemm,
         f"{p}'s caption floor: the same FLOPs at its own rate")
PY
}
"$bench" "$tmp/model.pth" 2 fp32,bf16 4 > "$tmp/out.jsonl" 2> "$tmp/err"; rc=$?
check "$tmp/out.jsonl" > "$tmp/why" 2>&1
ok "fp32,bf16: each precision's figures against its own rate and bytes ($(head -c 300 "$tmp/why"))" "[ $rc = 0 ] && [ ! -s '$tmp/why' ]"
# Where oneDNN has no bf16 (forced here), the products are vgpt's own: the
# bf16 rate is theirs, and named so.
VGPT_ISA=generic "$bench" "$tmp/model.pth" 2 fp32,bf16 4 > "$tmp/gen.jsonl" 2> "$tmp/err"; rc=$?
check "$tmp/gen.jsonl" > "$tmp/why" 2>&1
ok "generic kernels: the bf16 rate is vgpt's own products' ($(head -c 300 "$tmp/why"))" \
    "[ $rc = 0 ] && [ ! -s '$tmp/why' ] && grep -q '\"products\":\"vgpt:generic\"' '$tmp/gen.jsonl'"
