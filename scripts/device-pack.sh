#!/usr/bin/env bash
# Packs the release binary, the GPU test binaries and the benches (stripped, xz) into
# target/device.tar.xz (git-ignored) for a run on the device machine: carry
# ["target/device.tar.xz", ".gl", ".anchor"] and run scripts/device-run.sh there.
# Build first: cargo build --release --all-targets (same CARGO_TARGET_DIR).
# An argument names the archive instead (`scripts/device-pack.sh device-J` writes
# target/device-J.tar.xz, unpacking to device-J/): builds to A/B in one device call.
set -euo pipefail
name=${1:-device}
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-$HOME/.cache/vkgraph-target}/release"
out=target/$name; rm -rf "$out"; mkdir -p "$out"
cp "$T/vkgraph" "$out/"
for t in vk_ops vk_attention vk_mul_mat vk_get_rows vk_moe vk_runtime vk_errors vk_teardown model_vulkan parity kv_sequences kv_shift layer_split serve lora op_table cli mat_vec prefill decode_shapes attention; do
  f=$(find "$T/deps" -maxdepth 1 -type f -executable -name "$t-*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
  [ -n "$f" ] || { echo "missing $t (build with --all-targets)" >&2; exit 1; }
  cp "$f" "$out/$t"
done
strip "$out"/*
echo "$T" > "$out/TARGET_DIR"; pwd > "$out/MANIFEST_DIR"
tar cJf "target/$name.tar.xz" -C target "$name"
ls -la "target/$name.tar.xz"
