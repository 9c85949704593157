#!/usr/bin/env bash
# On the device machine (see ../shared/device/README.md): unpacks the Vulkan loader and
# target/device.tar.xz (scripts/device-pack.sh), recreates the build paths the test
# binaries were compiled with (CARGO_MANIFEST_DIR, CARGO_BIN_EXE_vkgraph), and runs
# what is asked: `tests` (the GPU test binaries), `validated` (the same under the Khronos
# 1.4 validation layer with synchronization validation, from .vvl/ — see
# scripts/fetch-validation-layer.sh), `stress` (vk_ops 50 times with parallel test
# threads, a run alive after 15 s counted as hung, its threads' stacks kept), `bench-kernels` (benches/mat_vec,
# benches/attention and the attention perf case). Output goes to $OUT/logs/.
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
# The device image has no network: the serve test driving the real `openai` Python client
# and the parity test on the downloaded SmolLM2 file run on the CI machine only; everything
# else runs here.
skips() {
  [ "$1" = serve ] && echo "--skip the_openai_python_client_works_against_the_server"
  [ "$1" = parity ] && echo "--skip smollm2_matches_llama_cpp"
}
# The H200 has the cooperative-matrix prompt path: tests that check it must not pass on
# the scalar one (tests/model_vulkan.rs).
export VKGRAPH_EXPECT_COOPMAT=${VKGRAPH_EXPECT_COOPMAT:-1}
for what in "$@"; do
  case "$what" in
    tests)
      for t in vk_ops vk_attention vk_mul_mat vk_get_rows vk_moe vk_runtime vk_errors vk_teardown model_vulkan parity kv_sequences kv_shift layer_split serve lora op_table; do
        echo "== $t" >> "$L/tests.txt"
        (cd "$man" && timeout 300 $D/$t --test-threads 1 $(skips $t) >> "$L/tests.txt" 2>&1; echo "$t rc=$?" >> "$L/tests.txt")
        grep -E "^test result|^$t rc=" "$L/tests.txt" | tail -2 | sed "s/^/$t: /"
      done ;;
    validated)
      # Debian 13's layer and loader need its glibc: the binaries run under its ld.so.
      V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done
      VL=$V/usr/lib/x86_64-linux-gnu
      # Tests that spawn the CLI (serve) must start it under the same ld.so as themselves.
      printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$VL/ld-linux-x86-64.so.2" \
        "$VL:/usr/lib/x86_64-linux-gnu" "$D/vkgraph" > "$tgt/vkgraph"; chmod +x "$tgt/vkgraph"
      for t in vk_ops vk_attention vk_mul_mat vk_get_rows vk_moe vk_runtime vk_errors vk_teardown model_vulkan kv_sequences kv_shift layer_split serve lora op_table; do
        echo "== $t (validated)" >> "$L/validated.txt"
        (cd "$man" && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 \
          timeout 400 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
          $D/$t --test-threads 1 $(skips $t) >> "$L/validated.txt" 2>&1; echo "$t rc=$?" >> "$L/validated.txt")
        grep -E "^test result|^$t rc=" "$L/validated.txt" | tail -2 | sed "s/^/$t (validated): /"
      done
      (cd "$man" && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d "$tgt/vkgraph" test-ops --validate \
        > "$L/test-ops-validated.txt" 2>&1; echo "test-ops --validate rc=$?"; tail -2 "$L/test-ops-validated.txt")
      cp $D/vkgraph "$tgt/vkgraph" ;;
    stress)
      # vk_ops with parallel test threads, ${STRESS_RUNS:-50} times; a run alive after 15 s
      # counts as hung and its threads' kernel wait channels, syscalls and stacks are kept.
      hung=0; failed=0; n=${STRESS_RUNS:-50}; runs=0; t0=$SECONDS
      for i in $(seq 1 $n); do
        [ $((SECONDS - t0)) -ge ${STRESS_MAX_S:-100000} ] && break; runs=$i
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
      echo "stress: vk_ops x$runs of $n (parallel threads, $((SECONDS - t0)) s): $hung hung, $failed failed" | tee -a "$L/stress.txt" ;;
    bench-kernels)
      timeout 400 $D/mat_vec > "$L/mat_vec.md" 2>&1; tail -3 "$L/mat_vec.md"
      timeout 200 $D/attention > "$L/attention.md" 2>&1; tail -3 "$L/attention.md"
      (cd "$man" && timeout 120 $D/vk_ops --ignored perf --nocapture >> "$L/mat_vec.md" 2>&1) ;;
  esac
done
