#!/usr/bin/env bash
# On the device machine (see ../shared/device/README.md): unpacks the Vulkan loader and
# target/device.tar.xz (scripts/device-pack.sh), recreates the build paths the test
# binaries were compiled with (CARGO_MANIFEST_DIR, CARGO_BIN_EXE_vkgraph), and runs
# what is asked: `tests` (the GPU test binaries), `validated` (the same under the Khronos
# 1.4 validation layer with synchronization validation, from .vvl/ — see
# scripts/fetch-validation-layer.sh), `stress` (vk_ops 50 times with parallel test
# threads, a run alive after 15 s counted as hung, its threads' stacks kept), `bench-kernels` (benches/mat_vec and
# the attention perf case). Output goes to $OUT/logs/.
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
    validated)
      # Debian 13's layer and loader need its glibc: the binaries run under its ld.so.
      V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done
      VL=$V/usr/lib/x86_64-linux-gnu
      for t in vk_ops vk_attention vk_mul_mat vk_runtime vk_errors vk_teardown model_vulkan; do
        echo "== $t (validated)" >> "$L/validated.txt"
        (cd "$man" && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 \
          timeout 400 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
          $D/$t --test-threads 1 >> "$L/validated.txt" 2>&1; echo "$t rc=$?" >> "$L/validated.txt")
        grep -E "^test result|^$t rc=" "$L/validated.txt" | tail -2 | sed "s/^/$t (validated): /"
      done
      grep -c "validated dispatches\|validation layer on" "$L/validated.txt" | sed 's/^/validation-on lines: /' ;;
    stress)
      # vk_ops with parallel test threads, ${STRESS_RUNS:-50} times; a run alive after 15 s
      # counts as hung and its threads' kernel wait channels, syscalls and stacks are kept.
      hung=0; failed=0; n=${STRESS_RUNS:-50}
      for i in $(seq 1 $n); do
        (cd "$man" && exec env VKGRAPH_FENCE_TIMEOUT=${STRESS_FENCE_S:-5} $D/vk_ops > "$L/stress-last.txt" 2>&1) &
        pid=$!; t=0
        while kill -0 $pid 2>/dev/null && [ $t -lt 150 ]; do sleep 0.1; t=$((t+1)); done
        if kill -0 $pid 2>/dev/null; then
          hung=$((hung+1)); f="$L/stress-hang-$i.txt"; cp "$L/stress-last.txt" "$f"
          for task in /proc/$pid/task/*; do
            echo "-- $(cat $task/comm) wchan=$(cat $task/wchan) syscall=$(cut -d' ' -f1-3 $task/syscall)" >> "$f"
            cat $task/stack >> "$f" 2>/dev/null
          done
          kill -9 $pid; wait $pid 2>/dev/null
        else
          wait $pid; rc=$?
          [ $rc != 0 ] && { failed=$((failed+1)); cp "$L/stress-last.txt" "$L/stress-fail-$i.txt"; }
        fi
      done
      echo "stress: vk_ops x$n (parallel threads): $hung hung, $failed failed" | tee -a "$L/stress.txt" ;;
    bench-kernels)
      timeout 400 $D/mat_vec > "$L/mat_vec.md" 2>&1; tail -3 "$L/mat_vec.md"
      (cd "$man" && timeout 120 $D/vk_ops --ignored perf --nocapture >> "$L/mat_vec.md" 2>&1) ;;
  esac
done
