#!/usr/bin/env bash
# On the device machine (see ../shared/device/README.md): unpacks the Vulkan loader and
# target/device.tar.xz (scripts/device-pack.sh), recreates the build paths the test
# binaries were compiled with (CARGO_MANIFEST_DIR, CARGO_BIN_EXE_vkgraph), and runs
# what is asked: `tests` (the GPU test binaries), `bench-kernels` (benches/mat_vec and
# the attention perf case), or a command after `--`. Output goes to $OUT/logs/.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/dev && tar xJf target/device.tar.xz -C /tmp/dev
D=/tmp/dev/device
man=$(cat $D/MANIFEST_DIR); tgt=$(cat $D/TARGET_DIR)
mkdir -p "$(dirname "$man")" "$tgt"; [ -e "$man" ] || ln -s "$PWD" "$man"
cp $D/vkgraph "$tgt/vkgraph"
export PATH=$D:$PATH VKGRAPH_REQUIRE_VULKAN=1
L=${OUT:-/tmp/out}/logs; mkdir -p "$L"
for what in "$@"; do
  case "$what" in
    tests)
      for t in vk_ops vk_attention vk_mul_mat vk_runtime vk_errors vk_teardown model_vulkan parity; do
        echo "== $t" >> "$L/tests.txt"
        (cd "$man" && timeout 300 $D/$t --test-threads 1 >> "$L/tests.txt" 2>&1; echo "$t rc=$?" >> "$L/tests.txt")
        grep -E "^test result|^$t rc=" "$L/tests.txt" | tail -2 | sed "s/^/$t: /"
      done ;;
    bench-kernels)
      timeout 400 $D/mat_vec > "$L/mat_vec.md" 2>&1; tail -3 "$L/mat_vec.md"
      (cd "$man" && timeout 120 $D/vk_ops --ignored perf --nocapture >> "$L/mat_vec.md" 2>&1) ;;
  esac
done
