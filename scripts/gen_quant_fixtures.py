#!/usr/bin/env python3
"""Generate the quantization fixtures under tests/fixtures/quant/ from ggml itself.

For each of vkgraph's 13 weight types this writes
  <type>.q     ggml's quantized bytes of input.f32 (ggml_quantize_chunk, no importance matrix,
               i.e. the quantize_row_*_ref algorithms llama-quantize uses without --imatrix)
  <type>.deq   ggml's dequantization of those bytes (dequantize_row_* / *_to_fp32_row), f32 LE
  stress_<type>.q  (quantized types) ggml's bytes for a larger input that is not stored: it is
               regenerated bit-identically by `stress_input()` here and in tests/quant.rs
               (SplitMix64 and exact IEEE f64 arithmetic only)
and once
  input.f32    the deterministic f32 input, ROWS x COLS little-endian
  meta.json    shape, ggml version, the relative RMSE of ggml's round trip per type and a
               checksum of the stress input

The ggml used is the shared library shipped in the PyPI wheel `libggml-python`; the numpy
implementation in the PyPI package `gguf` is used as an independent cross-check (bytes of the
types it can quantize, values of every type it can dequantize).

    python3 -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install gguf libggml-python numpy
    /tmp/qvenv/bin/python scripts/gen_quant_fixtures.py
"""

import ctypes
import glob
import json
import os
import sys

import numpy as np

import gguf
import gguf.quants
import libggml

ROWS, COLS = 8, 512
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "quant")

# (vkgraph / ggml name, ggml type id, block size, bytes per block)
TYPES = [
    ("f32", 0, 1, 4),
    ("f16", 1, 1, 2),
    ("bf16", 30, 1, 2),
    ("q4_0", 2, 32, 18),
    ("q4_1", 3, 32, 20),
    ("q5_0", 6, 32, 22),
    ("q5_1", 7, 32, 24),
    ("q8_0", 8, 32, 34),
    ("q2_K", 10, 256, 84),
    ("q3_K", 11, 256, 110),
    ("q4_K", 12, 256, 144),
    ("q5_K", 13, 256, 176),
    ("q6_K", 14, 256, 210),
]


def make_input() -> np.ndarray:
    """Rows with different character, so every code path of the quantizers is exercised.

    0: mixed scales: each 32-block has its own magnitude (1e-3 .. 1e2) and offset
    1: small values (~1e-6) incl. some f16/bf16 subnormals and exact zeros
    2: gaussian with a few large outliers (+-50) and one all-zero 32-block
    3: positive-only ramp pieces, constant blocks and a block of one repeated value
    4..7: plain gaussian N(0, 1) (the rows the error table in docs/quant.md is measured on)
    """
    rng = np.random.default_rng(20240611)
    x = np.zeros((ROWS, COLS), dtype=np.float64)

    mags = 10.0 ** rng.uniform(-3, 2, size=COLS // 32)
    offs = rng.normal(size=COLS // 32)
    for b in range(COLS // 32):
        x[0, 32 * b : 32 * b + 32] = mags[b] * (rng.normal(size=32) + 0.5 * offs[b])

    x[1] = rng.normal(size=COLS) * 1e-6
    x[1, ::17] = 0.0
    x[1, 5::41] = rng.normal(size=len(x[1, 5::41])) * 3e-8  # below f16's normal range

    x[2] = rng.normal(size=COLS)
    x[2, rng.choice(COLS, size=6, replace=False)] = rng.choice([-50.0, 50.0], size=6) * rng.uniform(0.5, 1.0, 6)
    x[2, 64:96] = 0.0

    x[3] = np.abs(rng.normal(size=COLS)) * 2.0
    x[3, 0:32] = np.linspace(0.0, 1.0, 32)
    x[3, 32:64] = 0.25
    x[3, 128:160] = -0.75
    x[3, 256:288] = np.linspace(-3.0, 3.0, 32)

    x[4:] = rng.normal(size=(ROWS - 4, COLS))
    return x.astype(np.float32)


STRESS_ROWS, STRESS_COLS = 16, 1024
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int):
        self.s = seed & MASK

    def next(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self) -> float:
        """Uniform in [0, 1) with 24 bits: exact in f64 and f32."""
        return (self.next() >> 40) / 16777216.0


def stress_input() -> np.ndarray:
    """Many blocks of varied character, generated from integers with exact f64 arithmetic so
    tests/quant.rs can regenerate the same f32 values. Per 32-value block: a power-of-two
    scale 2^-8..2^4, an offset (none, or up to +-2 scales), an occasional x16 outlier."""
    r = SplitMix64(0x5EED_F00D)
    out = []
    for _ in range(STRESS_ROWS * STRESS_COLS // 32):
        sel = r.next()
        scale = 2.0 ** ((sel % 13) - 8)
        offset = 0.0 if (sel >> 8) % 3 == 0 else (r.unit() - 0.5) * 4.0 * scale
        for _ in range(32):
            g = (r.unit() + r.unit() + r.unit() + r.unit() - 2.0) * 1.7320508075688772
            v = g * scale + offset
            if r.next() % 61 == 0:
                v *= 16.0
            out.append(v)
    return np.array(out, dtype=np.float64).astype(np.float32).reshape(STRESS_ROWS, STRESS_COLS)


def load_ggml():
    libdir = os.path.join(os.path.dirname(libggml.__file__), "lib64")
    cands = sorted(glob.glob(os.path.join(libdir, "libggml-base.so*")))
    if not cands:
        sys.exit(f"libggml-base.so not found under {libdir}")
    lib = ctypes.CDLL(cands[0])
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
    ]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    return lib


def ggml_dequantize(lib, name: str, q: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    if name == "f32":
        out[:] = q.view(np.float32)
        return out
    fn = {"f16": "ggml_fp16_to_fp32_row", "bf16": "ggml_bf16_to_fp32_row"}.get(name, f"dequantize_row_{name}")
    f = getattr(lib, fn)
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    f(q.ctypes.data, out.ctypes.data, n)
    return out


def rel_rmse(x: np.ndarray, y: np.ndarray) -> float:
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return float(np.sqrt(np.mean((x - y) ** 2)) / np.sqrt(np.mean(x ** 2)))


def main():
    lib = load_ggml()
    os.makedirs(OUT, exist_ok=True)
    x = np.ascontiguousarray(make_input())
    x.tofile(os.path.join(OUT, "input.f32"))
    meta = {
        "rows": ROWS,
        "cols": COLS,
        "gaussian_rows": [4, ROWS],
        "ggml": f"libggml-python {libggml.__version__ if hasattr(libggml, '__version__') else '?'}",
        "gguf_py": getattr(gguf, "__version__", "?"),
        "types": {},
    }
    try:
        from importlib.metadata import version

        meta["ggml"] = f"libggml-python {version('libggml-python')}"
        meta["gguf_py"] = version("gguf")
    except Exception:
        pass

    for name, tid, bs, ts in TYPES:
        assert not lib.ggml_quantize_requires_imatrix(tid), name
        row_bytes = COLS // bs * ts
        q = np.zeros(ROWS * row_bytes, dtype=np.uint8)
        got = lib.ggml_quantize_chunk(tid, x.ctypes.data, q.ctypes.data, 0, ROWS, COLS, None)
        assert got == q.size, (name, got, q.size)
        deq = ggml_dequantize(lib, name, q, ROWS * COLS)
        q.tofile(os.path.join(OUT, f"{name}.q"))
        deq.tofile(os.path.join(OUT, f"{name}.deq"))

        # Independent cross-check with gguf-py's numpy implementation.
        qt = gguf.GGMLQuantizationType[name.upper()]
        ref = gguf.quants.dequantize(q.reshape(ROWS, row_bytes), qt).reshape(-1).astype(np.float32)
        deq_diff = float(np.max(np.abs(ref - deq)))
        assert np.allclose(ref, deq, rtol=1e-6, atol=1e-30), (name, deq_diff)
        same_bytes = None
        try:
            qpy = gguf.quants.quantize(x, qt).reshape(-1).view(np.uint8)
            same_bytes = bool(np.array_equal(qpy, q))
        except (NotImplementedError, gguf.quants.QuantError):
            pass

        g = x[4:].reshape(-1)
        gd = deq.reshape(ROWS, COLS)[4:].reshape(-1)
        meta["types"][name] = {
            "id": tid,
            "bits_per_weight": ts * 8 / bs,
            "ggml_rel_rmse_gaussian": rel_rmse(g, gd),
            "ggml_rel_rmse_all": rel_rmse(x.reshape(-1), deq),
            "gguf_py_dequant_max_abs_diff": deq_diff,
            "gguf_py_quant_same_bytes": same_bytes,
        }
        print(f"{name:5} {row_bytes:5} B/row  rel_rmse(gauss)={meta['types'][name]['ggml_rel_rmse_gaussian']:.6f}"
              f"  gguf-py deq diff={deq_diff:.3g} quant same={same_bytes}")

    xs = np.ascontiguousarray(stress_input())
    meta["stress"] = {
        "rows": STRESS_ROWS,
        "cols": STRESS_COLS,
        "first": [float(v) for v in xs.reshape(-1)[:4]],
        "sum_f64": float(np.sum(xs.astype(np.float64))),
    }
    for name, tid, bs, ts in TYPES:
        if bs == 1:
            continue
        q = np.zeros(STRESS_ROWS * (STRESS_COLS // bs * ts), dtype=np.uint8)
        got = lib.ggml_quantize_chunk(tid, xs.ctypes.data, q.ctypes.data, 0, STRESS_ROWS, STRESS_COLS, None)
        assert got == q.size, (name, got, q.size)
        q.tofile(os.path.join(OUT, f"stress_{name}.q"))

    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
