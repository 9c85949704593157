#!/usr/bin/env python3
"""Serving benchmark for any OpenAI-compatible server (vkgraph serve, llama-server): N
concurrent streamed completions, repeated R times; prints aggregate generated tokens/s and
per-request latency (time to first token, total) as a markdown row, and with --json one
JSON object. Standard library only, so the same client measures both servers in one run.

usage: serve_bench.py URL [-n 1,4,16] [-r 2] [--tokens 128] [--prompt-words 64] [--json]
  URL: http://127.0.0.1:8080 (the /v1/completions endpoint is used)
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def one(url, prompt, tokens, out, i):
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0,
                       "stream": True, "ignore_eos": True}).encode()
    req = urllib.request.Request(url + "/v1/completions", body,
                                 {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    first, n = None, 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            # A chunk with a choice is a generated token even when its text is empty
            # (a partial UTF-8 sequence, frequent with random-weight models).
            ch = chunk.get("choices") or []
            if ch:
                n += 1
                if first is None:
                    first = time.perf_counter() - t0
            usage = chunk.get("usage")
            if usage and usage.get("completion_tokens"):
                n = usage["completion_tokens"]
    out[i] = (first or 0.0, time.perf_counter() - t0, n)


def run(url, n, tokens, prompt):
    out = [None] * n
    ths = [threading.Thread(target=one, args=(url, f"{prompt} ({i})", tokens, out, i))
           for i in range(n)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    if any(o is None for o in out):
        raise RuntimeError("a request failed")
    return wall, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("-n", default="1,4,16")
    ap.add_argument("-r", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    prompt = " ".join(["The quick brown fox jumps over the lazy dog."] * (a.prompt_words // 9 + 1))
    run(a.url, 1, 8, prompt)  # warm-up
    rows = []
    for n in [int(x) for x in a.n.split(",")]:
        aggs, ttft, lat = [], [], []
        for _ in range(a.r):
            wall, out = run(a.url, n, a.tokens, prompt)
            aggs.append(sum(o[2] for o in out) / wall)
            ttft += [o[0] for o in out]
            lat += [o[1] for o in out]
        rows.append({"streams": n, "aggregate_tps": statistics.mean(aggs),
                     "ttft_ms": 1e3 * statistics.median(ttft),
                     "latency_ms": 1e3 * statistics.median(lat)})
    if a.json:
        print(json.dumps({"url": a.url, "tokens": a.tokens, "rows": rows}))
        return
    print("| streams | aggregate t/s | median TTFT ms | median request ms |")
    print("| ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['streams']} | {r['aggregate_tps']:.1f} | {r['ttft_ms']:.1f} | {r['latency_ms']:.1f} |")


if __name__ == "__main__":
    main()
