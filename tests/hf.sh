#!/usr/bin/env bash
# hf.sh - the Hugging Face ViT-GPT2 family (nlpconnect/vit-gpt2-image-captioning
# and its fine-tunes) against tests/ref/hf_ref.py, an independent PyTorch
# implementation: random-weight hub folders in every layout the hub has
# (model.safetensors F32 / F16 / BF16 without lm_head, pytorch_model.bin as a
# torch zip with its mask buffers and tied lm_head, fp32 and fp16, the legacy
# pre-1.6 torch.save stream, enc_to_dec_proj, generation settings only in
# config.json, one fixture biased towards 50256 so that captions end), each
# loaded by its folder path: encoder states and teacher-forced logits within
# 1e-4, greedy tokens on every decisive step, beam search with the folder's
# generate() defaults identical to the reference, in-process and through
# the embedded pipeline.  Then malformed files and configurations vgpt
# cannot run (one-line errors naming the file and field), the fingerprint
# check between encoderd and decoderd, AddressSanitizer, bf16.
# Fixtures are cached under $VGPT_CACHE, keyed by the reference's checksum.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VGPT_BUILD:-$root/build}
san=${VGPT_SAN_BUILD:-}
py=/usr/bin/python3
ref=$root/tests/ref/hf_ref.py
if ! $py -c 'import torch' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 has no torch (apt-get install python3-torch): HF oracle tests not run"
    exit 0
fi
key=$(cat "$ref" "$(dirname "$ref")/ref_math.py" | md5sum | cut -c1-12)
cache=${VGPT_CACHE:-$root/build/cache}/hf-$key
mkdir -p "$cache"
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=PASSIVE

# pngs DIR NAME COUNT SEED: COUNT random 224x224 PNGs DIR/NAME0.png..., cached
# (no resize, so PIL and libvips give the same pixels)
pngs() {
    [ -f "$1/.done" ] && return 0
    mkdir -p "$1" && $py -c '
import sys, numpy as np
from PIL import Image
d, name, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
g = np.random.default_rng(seed)
for i in range(n):
    Image.fromarray(g.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(f"{d}/{name}{i}.png")
' "$@" && touch "$1/.done"
}
imgs=$cache/img
pngs "$imgs" img 3 7

# fixture NAME STEPS MKFIX_ARGS... : hub folder + reference runs (random pixels; the image files), cached
fixture() {
    local name=$1 k=$2; shift 2
    local d=$cache/$name
    if [ ! -f "$d/.done" ]; then
        rm -rf "$d"; mkdir -p "$d"
        $py "$ref" mkfix --out "$d/model" "$@" >"$d/mkfix.log" 2>&1 &&
        $py "$ref" run --model "$d/model" --n-images 3 --steps "$k" --out "$d/run" >"$d/run.log" 2>&1 &&
        $py "$ref" run --model "$d/model" --images "$imgs"/img*.png --steps "$k" --out "$d/run-img" \
            >"$d/run-img.log" 2>&1 && touch "$d/.done" ||
            { echo "FAIL: [$name] reference fixture could not be built:"; tail -5 "$d"/*.log; return 1; }
    fi
    $py "$ref" check --dir "$d/run-img" $([ "$name" = "${name%eos*}" ] || echo --want-eos) |
        sed "s/^\(PASS\|FAIL\): /\1: [$name reference] /"
}

oracle() { # oracle NAME [BUILD]: tool_oracle on the folder path
    local name=$1 b=${2:-$build}
    "$b/tests/tool_oracle" "$cache/$name/model" "$cache/$name/run" 1e-4 --no-sampling |
        sed "s/^\(PASS\|FAIL\): /\1: [$name$([ "$b" = "$build" ] || echo ' asan')] /"
}

# beam_check RUN JSONL TAG: vgpt-cli's tokens identical to the reference's beam search
beam_check() {
    $py - "$@" <<'PY'
import json, sys
run, bout, tag = sys.argv[1:]
meta = json.load(open(f"{run}/meta.json"))
N = meta["n"]
brows = [json.loads(l) for l in open(bout)]
want = [b["tokens"] for b in meta["beams"]]
got = [r.get("tokens") for r in brows]
g = meta["generation"]
print(("PASS" if got == want and len(want) == N else "FAIL") +
      f": [{tag}] (beam {meta['beam_width']}, max_length {g['max_length']}, early_stopping "
      f"{json.dumps(g['early_stopping'])}): tokens identical to the reference's beam search "
      f"{want if got != want else ''} got {got if got != want else 'same'}")
PY
}

# cli_oracle NAME STEPS: vgpt-cli on the image files, in-process and through
# the embedded pipeline: greedy tokens equal on every decisive step, and
# with no decoding options (the folder's generate() defaults: beam search)
# tokens identical to the reference's beam search.
cli_oracle() {
    local name=$1 k=$2 d=$cache/$1
    ls "$imgs"/img*.png > "$tmp/list"
    for mode in --in-process ""; do
        "$build/vgpt-cli" $mode --no-cache --greedy --max-tokens "$k" --format jsonl --no-progress \
            --model "$d/model" < "$tmp/list" > "$tmp/greedy.jsonl" 2>"$tmp/cli.err"
        "$build/vgpt-cli" $mode --no-cache --format jsonl --no-progress \
            --model "$d/model" < "$tmp/list" > "$tmp/beam.jsonl" 2>>"$tmp/cli.err"
        $py "$root/tests/ref/greedy_check.py" "$d/run-img" "$tmp/greedy.jsonl" "$name ${mode:-pipeline}"
        beam_check "$d/run-img" "$tmp/beam.jsonl" "$name ${mode:-pipeline}: default decoding = the folder's generate()"
        [ -s "$tmp/beam.jsonl" ] || tail -n 5 "$tmp/cli.err" | sed 's/^/info: vgpt-cli said: /' # why nothing came
    done
}

fixture st-fp32 15 --layout safetensors --dtype fp32 && oracle st-fp32 && cli_oracle st-fp32 15
fixture st-fp16 15 --layout safetensors --dtype fp16 --seed 4 && oracle st-fp16
fixture st-bf16 15 --layout safetensors --dtype bf16 --seed 5 && oracle st-bf16
fixture bin-fp32 15 --layout bin --dtype fp32 --seed 6 && oracle bin-fp32 && cli_oracle bin-fp32 15
fixture bin-fp16 15 --layout bin --dtype fp16 --seed 7 && oracle bin-fp16
fixture legacy-fp32 15 --layout legacy --dtype fp32 --seed 8 && oracle legacy-fp32 && cli_oracle legacy-fp32 15
fixture st-project 15 --layout safetensors --project --seed 9 && oracle st-project
fixture st-eos 15 --layout safetensors --eos-bias 18 && oracle st-eos && cli_oracle st-eos 15
# preprocessing travels with the model: another mean/std in preprocessor_config.json
fixture st-imagenet 15 --layout safetensors --eos-bias 18 --imagenet-norm && cli_oracle st-imagenet 15
fixture legacy-eos-nogen 11 --layout legacy --eos-bias 18 --no-gen-config && oracle legacy-eos-nogen &&
    cli_oracle legacy-eos-nogen 11

# --- early_stopping false, true and "never" from generation_config.json (the
# 50256-biased folder, so that hypotheses finish early), on 8 images: default
# decoding follows each, in-process and through the pipeline (the wire's
# "es"), and --early-stopping overrides the folder.  Each rule must change
# some caption, or the check could not tell them apart.
esimg=$cache/esimg
pngs "$esimg" es 8 11
ls "$esimg"/es*.png > "$tmp/eslist"
es_fixture() { # es_fixture VALUE: st-eos's weights, generation_config.json with early_stopping VALUE
    local d=$cache/es-$1
    if [ ! -f "$d/.done" ]; then
        rm -rf "$d"; mkdir -p "$d/model"
        for f in "$cache/st-eos/model"/*; do ln -s "$f" "$d/model/"; done
        rm "$d/model/generation_config.json"
        $py -c 'import json,sys; g=json.load(open(sys.argv[1])); g["early_stopping"]=json.loads(sys.argv[3]); json.dump(g, open(sys.argv[2],"w"))' \
            "$cache/st-eos/model/generation_config.json" "$d/model/generation_config.json" "$2" &&
        $py "$ref" run --model "$d/model" --images $(cat "$tmp/eslist") --steps 4 --out "$d/run-img" >"$d/run.log" 2>&1 &&
            touch "$d/.done" || { echo "FAIL: [es-$1] reference run failed:"; tail -3 "$d/run.log"; return 1; }
    fi
}
if [ -f "$cache/st-eos/.done" ] && es_fixture false false && es_fixture true true && es_fixture never '"never"'; then
    for es in false true never; do
        for mode in --in-process ""; do
            "$build/vgpt-cli" $mode --no-cache --format jsonl --no-progress --model "$cache/es-$es/model" \
                < "$tmp/eslist" > "$tmp/es.jsonl" 2>"$tmp/es.err"
            beam_check "$cache/es-$es/run-img" "$tmp/es.jsonl" "es-$es ${mode:-pipeline}: generation_config.json's early_stopping"
        done
        "$build/vgpt-cli" --in-process --no-cache --format jsonl --no-progress --model "$cache/es-false/model" \
            --early-stopping $es < "$tmp/eslist" > "$tmp/es.jsonl" 2>"$tmp/es.err"
        beam_check "$cache/es-$es/run-img" "$tmp/es.jsonl" "--early-stopping $es over the folder's false"
    done
    $py - "$cache" <<'PY'
import json, sys
b = {e: [h["tokens"] for h in json.load(open(f"{sys.argv[1]}/es-{e}/run-img/meta.json"))["beams"]]
     for e in ("false", "true", "never")}
d = {e: sum(x != y for x, y in zip(b["false"], b[e])) for e in ("true", "never")}
print(("PASS" if d["true"] and d["never"] else "FAIL") +
      f": the early_stopping rules are told apart: true changes {d['true']}/8 beam captions, never {d['never']}/8")
PY
else
    echo "FAIL: early_stopping fixtures could not be built"
fi

# --- the weights file named instead of the folder; the tokenizer beside it
out=$(ls "$imgs"/img0.png | "$build/vgpt-cli" --in-process --no-cache --greedy --max-tokens 4 --format jsonl \
      --no-progress --model "$cache/st-fp32/model/model.safetensors" 2>&1)
want=$($py -c "import json; print(json.load(open('$cache/st-fp32/run-img/meta.json'))['greedy'][0][:4])" | tr -d ' ')
if printf '%s' "$out" | tr -d ' ' | grep -qF "\"tokens\":$want"; then
    echo "PASS: --model DIR/model.safetensors captions as --model DIR does"
else echo "FAIL: --model DIR/model.safetensors: $out (want tokens $want)"; fi

# --- malformed files and configurations vgpt cannot run: one line, exit 2
base=$cache/st-fp32/model
mkcase() { # mkcase NAME: a copy of the tiny safetensors folder (weights linked)
    rm -rf "$tmp/$1"; mkdir -p "$tmp/$1"
    for f in "$base"/*; do ln -s "$f" "$tmp/$1/$(basename "$f")"; done
    rm -f "$tmp/$1/config.json" "$tmp/$1/model.safetensors"
    cp "$base/config.json" "$tmp/$1/config.json"
    ln -s "$base/model.safetensors" "$tmp/$1/model.safetensors"
}
expect() { # expect CASE REGEX DESCRIPTION
    local out rc
    out=$(ls "$imgs"/img0.png | "$build/vgpt-cli" --in-process --greedy --model "$tmp/$1" 2>&1 >/dev/null); rc=$?
    if [ $rc = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -Eq "$2"; then
        echo "PASS: $3: $out"
    else
        echo "FAIL: $3: exit $rc, expected one line matching /$2/, got: $out"
    fi
}
cfg() { # cfg CASE PYTHON-EXPR-ON-c: edits the case's config.json
    $py -c "import json,sys; c=json.load(open(sys.argv[1])); $2; json.dump(c, open(sys.argv[1],'w'))" "$tmp/$1/config.json"
}
st() { # st CASE PYTHON: rewrites the case's model.safetensors from b (bytes), h (header dict), n (its length)
    rm -f "$tmp/$1/model.safetensors"
    $py - "$base/model.safetensors" "$tmp/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
src, dst, code = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
out = None
exec(code)
if out is None:
    hj = json.dumps(h).encode()
    out = struct.pack("<Q", len(hj)) + hj + b[8 + n:]
open(dst, "wb").write(out)
PY
}
for c in enc dec inv upcast act cross eps resample size nocfg; do mkcase $c; done
cfg enc 'c["encoder"]["model_type"]="deit"'
expect enc 'config.json: encoder.model_type is "deit"; vgpt implements only "vit"' "another encoder type is refused, the field named"
cfg dec 'c["decoder"]["model_type"]="gpt_neo"'
expect dec 'decoder.model_type is "gpt_neo"' "another decoder type is refused"
cfg inv 'c["decoder"]["scale_attn_by_inverse_layer_idx"]=True'
expect inv 'config.json: decoder.scale_attn_by_inverse_layer_idx is true; vgpt implements only false' \
    "scale_attn_by_inverse_layer_idx is refused"
cfg upcast 'c["decoder"]["reorder_and_upcast_attn"]=True'
expect upcast 'decoder.reorder_and_upcast_attn is true' "reorder_and_upcast_attn is refused"
cfg act 'c["decoder"]["activation_function"]="relu"'
expect act 'decoder.activation_function is "relu"' "another activation is refused"
cfg cross 'c["decoder"]["add_cross_attention"]=False'
expect cross 'decoder.add_cross_attention is false' "a decoder without cross-attention is refused"
cfg eps 'c["decoder"]["layer_norm_epsilon"]=1e-6'
expect eps 'decoder.layer_norm_epsilon is 1e-06' "another GPT-2 LayerNorm epsilon is refused"
rm "$tmp/resample/preprocessor_config.json"
echo '{"do_resize": true, "resample": 3, "image_mean": [0.5,0.5,0.5], "image_std": [0.5,0.5,0.5], "size": 224}' \
    > "$tmp/resample/preprocessor_config.json"
expect resample 'preprocessor_config.json: resample is 3' "a resampling filter other than bilinear is refused"
rm "$tmp/size/preprocessor_config.json"
echo '{"size": {"height": 384, "width": 384}}' > "$tmp/size/preprocessor_config.json"
expect size 'preprocessor_config.json: size is 384x384 but the encoder.s image_size is 224' "a preprocessing size the ViT does not take is refused"
rm "$tmp/nocfg/config.json"
expect nocfg 'model.safetensors: not a checkpoint of a model vgpt knows|no config.json' "weights without config.json"
mkdir -p "$tmp/empty"; expect empty 'a folder without model.safetensors or pytorch_model.bin' "a folder without weights"
for c in trunc hlen json range size dtype shape; do mkcase $c; done
st trunc 'out = b[:len(b) // 2]'
expect trunc "model.safetensors: safetensors header: tensor '.*': data_offsets .* outside the" "a truncated safetensors file"
st hlen 'out = struct.pack("<Q", len(b)) + b[8:]'
expect hlen 'model.safetensors: safetensors header is [0-9]+ bytes but the file has only' "a header length past the end"
st json 'out = b[:8] + b"{" + b[9:8 + n].replace(b"\"", b"\x27", 3) + b[8 + n:]'
expect json 'model.safetensors: safetensors header:1:[0-9]+: ' "a header that is not JSON (line:column)"
st range 'k = next(k for k in h if k.endswith("wte.weight")); h[k]["data_offsets"][1] += 10**9'
expect range "tensor 'decoder.transformer.wte.weight': data_offsets" "data_offsets beyond the data"
st size 'k = next(k for k in h if k.endswith("ln_f.bias")); h[k]["shape"] = [65]'
expect size "tensor 'decoder.transformer.ln_f.bias': F32 65 elements need 260 bytes but data_offsets span 256" \
    "a shape that disagrees with data_offsets"
st dtype 'k = next(k for k in h if k.endswith("ln_f.bias")); h[k]["dtype"] = "Q7"'
expect dtype "tensor 'decoder.transformer.ln_f.bias' has unknown dtype 'Q7'" "an unknown dtype"
st shape 'k = next(k for k in h if k.endswith("h.1.attn.c_attn.weight")); h[k]["shape"] = [192, 64]'
expect shape 'tensor decoder.transformer.h.1.attn.c_attn.weight has shape \[192,64\], expected \[64,192\]' \
    "a Conv1D weight stored [out,in] instead of [in,out]"
mkdir -p "$tmp/legtrunc"; for f in "$cache/legacy-fp32/model"/*; do ln -s "$f" "$tmp/legtrunc/"; done
rm "$tmp/legtrunc/pytorch_model.bin"; head -c 200000 "$cache/legacy-fp32/model/pytorch_model.bin" > "$tmp/legtrunc/pytorch_model.bin"
expect legtrunc 'pytorch_model.bin: legacy torch.save stream: storage .* (claims|truncated)' "a truncated legacy torch.save stream"

# --- generate() settings vgpt does not implement: the folder's default
# decoding is refused naming the setting, decoding chosen on the command
# line still runs; max_new_tokens wins over max_length, as in generate()
gencase() { # gencase CASE PYTHON-ON-g: the case's generation_config.json edited
    mkcase "$1"; rm -f "$tmp/$1/generation_config.json"
    $py -c "import json,sys; g=json.load(open(sys.argv[1])); $2; json.dump(g, open(sys.argv[2],'w'))" \
        "$base/generation_config.json" "$tmp/$1/generation_config.json"
}
for c in 'repetition_penalty|g["repetition_penalty"]=1.2' 'do_sample|g["do_sample"]=True' \
         'forced_eos_token_id|g["forced_eos_token_id"]=50256' 'min_length|g["min_length"]=5'; do
    gencase "gen-${c%%|*}" "${c#*|}"
    out=$(ls "$imgs"/img0.png | "$build/vgpt-cli" --in-process --no-cache --model "$tmp/gen-${c%%|*}" 2>&1 >/dev/null); rc=$?
    out2=$(ls "$imgs"/img0.png | "$build/vgpt-cli" --in-process --no-cache --beam 4 --no-progress --model "$tmp/gen-${c%%|*}" 2>&1); rc2=$?
    if [ $rc = 2 ] && printf '%s' "$out" | grep -q "generation_config.json: ${c%%|*} is" && [ $rc2 = 0 ]; then
        echo "PASS: generation_config.json's ${c%%|*}: default decoding refused naming it, --beam 4 runs: $out"
    else echo "FAIL: generation_config.json's ${c%%|*}: exit $rc ($out); with --beam 4 exit $rc2 ($out2)"; fi
done
gencase gen-new 'g["max_new_tokens"]=5; g["max_length"]=16'
out=$(ls "$imgs"/img0.png | "$build/vgpt-cli" --in-process --no-cache --format jsonl --no-progress --model "$tmp/gen-new" 2>&1)
if [ "$(printf '%s' "$out" | $py -c 'import json,sys; print(len(json.loads(sys.stdin.read())["tokens"]))' 2>&1)" = 5 ]; then
    echo "PASS: generation_config.json's max_new_tokens 5 wins over max_length 16: 5 tokens"
else echo "FAIL: max_new_tokens 5 with max_length 16: $out"; fi

# --- encoderd and decoderd of different models refuse to pair
p0=$((20000 + RANDOM % 20000))
P=tcp://127.0.0.1:$p0 E=tcp://127.0.0.1:$((p0+1)) D=tcp://127.0.0.1:$((p0+2)) R=tcp://127.0.0.1:$((p0+3))
"$build/decoderd" --listen "$D" --model "$cache/st-eos/model" --threads 1 --stats-interval 0 2>"$tmp/d.log" & pids+=($!)
"$build/encoderd" --listen "$E" --next "$D" --model "$cache/st-fp32/model" --threads 1 --stats-interval 0 2>"$tmp/e.log" & pids+=($!)
"$build/preprocd" --listen "$P" --next "$E" --stats-interval 0 2>"$tmp/p.log" & pids+=($!)
for f in d e p; do for i in $(seq 1 100); do grep -q ready "$tmp/$f.log" && break; sleep 0.1; done; done
out=$(ls "$imgs"/img0.png | timeout 60 "$build/vgpt-cli" --greedy --no-progress --connect "$P" --reply "$R" \
      --model "$cache/st-fp32/model" 2>&1)
if printf '%s' "$out" | grep -q 'visual tokens come from another model (encoderd.s fingerprint [0-9a-f]\{16\}, this decoderd.s [0-9a-f]\{16\})'; then
    echo "PASS: a decoderd of another model refuses encoderd's tokens, both fingerprints named: $(printf '%s' "$out" | head -1 | cut -c1-200)"
else echo "FAIL: decoderd of another model: $out"; fi
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=()

# --- AddressSanitizer over every reader, bf16
if [ -n "$san" ] && [ -x "$san/tests/tool_oracle" ]; then
    for n in st-fp16 bin-fp32 legacy-fp32; do ASAN_OPTIONS=detect_leaks=1 oracle $n "$san"; done
fi
# bf16 on the fp32 file, and on the fp16 one (its tied head widened only
# while it is converted, then tok_emb read a row at a time)
for n in st-fp32 st-fp16; do
out=$("$build/tests/tool_oracle" "$cache/$n/model" "$cache/$n/run" --fidelity bf16 2>&1)
$py - "$out" "$n" <<'PY'
import json, sys
n = sys.argv[2]
try:
    f = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    print(f"FAIL: [{n} bf16] no fidelity figures: {sys.argv[1][-300:]}"); sys.exit(0)
ok = f["vis_rel_err"] <= 0.1 and f["logits_rel_err"] <= 0.05 and f["decisive_steps"] > 0 and f["agreement"] >= 0.99
print(("PASS" if ok else "FAIL") + f": [{n} bf16] encoder states rel err {f['vis_rel_err']:.3g} <= 0.1, logits "
      f"{f['logits_rel_err']:.3g} <= 0.05, top token agrees on {f['agree']}/{f['decisive_steps']} decisive steps")
PY
done

if [ "${VGPT_SKIP_FULL:-0}" = 1 ]; then
    echo "SKIP: full-size HF oracle (VGPT_SKIP_FULL=1)"
else
    fixture full-st-fp32 8 --preset full --layout safetensors --eos-bias 11 && oracle full-st-fp32 &&
        cli_oracle full-st-fp32 8
    fixture full-bin-fp16 6 --preset full --layout bin --dtype fp16 --seed 4 && oracle full-bin-fp16
fi
