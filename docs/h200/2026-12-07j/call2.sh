# Call 2 (twenty-first session): F = main c6ce71c (target/device.tar.xz: the fence polled
# 20 ms before a blocking wait; split-K decode attention with at most 2 heads per
# workgroup and V / K preloaded) — every GPU test binary (scripts/device-run.sh tests),
# the attention op suite under the Khronos validation layer, while llama.cpp CUDA builds
# (niced) for call 3 on the same machine.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(nice -n 15 bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; cat $L/tests-summary.txt | grep "rc=" | tr '\n' ' '; echo; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  [ -f /tmp/$3.gguf ] || $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
