"""greedy_check.py RUN JSONL TAG - vgpt-cli's greedy tokens (JSONL lines,
one per image, in order) against a reference run's (greedy.i32, margin.f32,
logits_steps.f32, meta.json: what vgpt_ref.py and hf_ref.py `run` write):
equal on every decisive step (top-2 margin above 1e-4 of the logits'
scale), up to the first 50256.  Prints one PASS/FAIL line (and info lines)."""
import json
import sys

import numpy as np


def main():
    run, out, tag = sys.argv[1:4]
    meta = json.load(open(f"{run}/meta.json"))
    N, K, V = meta["n"], meta["steps"], meta["vocab"]
    greedy = np.fromfile(f"{run}/greedy.i32", "<i4").reshape(N, K)
    margin = np.fromfile(f"{run}/margin.f32", "<f4").reshape(N, K)
    logits = np.fromfile(f"{run}/logits_steps.f32", "<f4").reshape(N, K, V)
    rows = [json.loads(line) for line in open(out)]
    ok = len(rows) == N
    for n in range(min(N, len(rows))):
        got, compared = rows[n].get("tokens", []), 0
        for s in range(K):
            if margin[n, s] <= 1e-4 * np.abs(logits[n, s]).max():
                break
            if s >= len(got) or got[s] != greedy[n, s]:
                ok = False
                break
            compared += 1
            if greedy[n, s] == 50256:
                break
        ok = ok and compared > 0
        print(f"info: [{tag}] image {n}: {compared} decisive greedy steps equal")
    print(("PASS" if ok else "FAIL") +
          f": [{tag}] vgpt-cli greedy tokens on {N} image files equal the reference on every decisive step")


main()
