#!/usr/bin/env bash
# A coverage-guided fuzz campaign of fuzz/'s `gguf_loader` target without cargo-fuzz:
# builds it with the nightly toolchain and the instrumentation cargo-fuzz passes
# (sanitizer coverage with 8-bit counters, PC table and compare tracing, AddressSanitizer,
# `--cfg fuzzing`, debug assertions and overflow checks) into its own target directory,
# seeds a corpus with gen-model's micro models (llama, qwen2, qwen3; ~38 kB, so a mutant
# runs in about a millisecond), and runs libFuzzer for SECONDS (default 600). Findings land in fuzz/artifacts/gguf_loader/, the grown corpus in
# fuzz/corpus/gguf_loader/ (both git-ignored). docs/testing.md, "Fuzzing".
#
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
T=${VKGRAPH_FUZZ_TARGET_DIR:-$HOME/.cache/vkgraph-fuzz-target}
target=x86_64-unknown-linux-gnu
# With --target, RUSTFLAGS reach only the target's code, not build scripts (shaderc).
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Zsanitizer=address --cfg fuzzing \
-Cdebug-assertions -Coverflow-checks" \
  CARGO_TARGET_DIR="$T" cargo +nightly build --release --manifest-path fuzz/Cargo.toml \
  --target "$target" --bin gguf_loader
bin="$T/$target/release/gguf_loader"
corpus=fuzz/corpus/gguf_loader
art=fuzz/artifacts/gguf_loader
mkdir -p "$corpus" "$art"
vk=${CARGO_TARGET_DIR:-$HOME/.cache/vkgraph-target}/release/vkgraph
for arch in qwen3 qwen2 llama; do
  [ -e "$corpus/micro-$arch.gguf" ] || "$vk" gen-model --arch "$arch" --preset micro \
    --quant q8_0 -o "$corpus/micro-$arch.gguf" >/dev/null
done
"$bin" "$corpus" -artifact_prefix="$art/" -max_total_time="$secs" -max_len=65536 \
  -rss_limit_mb=4096 -print_final_stats=1 "$@"
