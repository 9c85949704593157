#!/usr/bin/env bash
# The test command (README, CI): set-up, the default model, then every test in
# release mode (one profile, so the 15-minute shaderc build is paid once) under the
# Vulkan validation layer. Fails loudly when no Vulkan device exists.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vkgraph-target}"
if ! vulkaninfo --summary >/dev/null 2>&1; then
  echo "error: no Vulkan device (install mesa-vulkan-drivers for lavapipe)" >&2
  exit 1
fi
if ! vulkaninfo --summary 2>/dev/null | grep -q VK_LAYER_KHRONOS_validation; then
  echo "error: VK_LAYER_KHRONOS_validation is not installed (apt install vulkan-validationlayers):" \
       "the GPU tests must run validated" >&2
  exit 1
fi
./scripts/fetch-smollm2.sh >/dev/null
export VKGRAPH_REQUIRE_VULKAN=1
# Every Vulkan test fails if it would run without the validation layer or its
# synchronization validation (tests/common/mod.rs).
export VKGRAPH_REQUIRE_VALIDATION=1
cargo test --release "$@"
# The op suite once more through the CLI users run, validated, for its summary lines
# (cases passed, dispatches validated).
"${CARGO_TARGET_DIR}/release/vkgraph" test-ops --validate | grep -E "passed|validated"

# The cargo-fuzz target (fuzz/, docs/testing.md "Fuzzing") must keep building and running:
# built against the same target directory, then run on the micro models scripts/fuzz.sh
# seeds with and 2,000 random inputs (stable has no coverage instrumentation: a smoke
# run, not a campaign; scripts/fuzz.sh runs one on nightly).
cargo build --release --manifest-path fuzz/Cargo.toml
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
for arch in qwen3 qwen2 llama; do
  "${CARGO_TARGET_DIR}/release/vkgraph" gen-model --arch "$arch" --preset micro \
    --quant q8_0 -o "$seeds/micro-$arch.gguf" >/dev/null
done
"${CARGO_TARGET_DIR}/release/gguf_loader" "$seeds" -runs=2000 -max_len=65536 \
  -rss_limit_mb=4096 2>&1 | grep -E "^Done|INITED"
