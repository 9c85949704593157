# Call 1 (for the first session with a device after the twenty-second, which had none):
# H = main with the coopmat tiles dequantizing to halves (dq_chunk_h / dq8_h, 3a4586e,
# 5b32001; target/device.tar.xz), N = main 2f5077d (the twenty-first session's end;
# target/vkgraph-N.xz, target/prefill-N.xz). First every GPU test binary of H (the coopmat
# kernels changed and only run on a GPU; vk_mul_mat's mul_mat_coopmat no longer records an
# empty matmul for its x=f16 / split-K cases; vk_get_rows is new), then the prompt-matmul
# kernel table of both builds (benches/prefill: n = 512, and n = 32 — about what one
# expert's bucket holds in a MoE prompt batch), and the drivers' pipeline statistics.
# Carry: ["target/device.tar.xz","target/vkgraph-N.xz","target/prefill-N.xz",".gl",".vvl",".anchor"]
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; grep "rc=" $L/tests-summary.txt | tr '\n' ' '; echo "(t=$SECONDS)"; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
xz -dc target/prefill-N.xz > /tmp/prefill-N && chmod +x /tmp/prefill-N
export VKGRAPH_BENCH_TYPES=q4_0,q8_0,q4_K,q5_K,q6_K,q2_K,q3_K,f16
for n in 512 32; do
  for b in N H; do
    B=$([ $b = N ] && echo /tmp/prefill-N || echo $D/prefill)
    VKGRAPH_BENCH_N=$n VKGRAPH_PIPELINE_STATS=$([ $n = 512 ] && echo 1 || echo 0) timeout 150 $B > $L/prefill-$b-n$n.txt 2>&1
    echo "$b n=$n rc=$? (t=$SECONDS)"; grep -iE "q4_0|q4_K" $L/prefill-$b-n$n.txt | head -4 | cut -c1-160
  done; pack
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
