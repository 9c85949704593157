# Call 4 (2026-12-07, twelfth session; call 3 cut to the last device time): L = main
# (target/device.tar.xz): all GPU test binaries (scripts/device-run.sh tests: the op
# table's first full run on NVIDIA, this session's kernels), then as time allows the
# K-quant mat-vec of L against I (target/ab-I.tar.xz).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; cat $L/tests-summary.txt; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
mkdir -p /tmp/I && tar xJf target/ab-I.tar.xz -C /tmp/I; I=/tmp/I/ab-I
export VKGRAPH_BENCH_TYPES=q4_K,q5_K,q6_K VKGRAPH_BENCH_SHAPES=4096x14336
for p in "L $D" "I $I"; do set -- $p
  timeout 30 $2/mat_vec > $L/mat_vec-$1.txt 2>&1
  echo "$1 mat_vec int8 DRAM n=1 GB/s: $(grep -F ' int8 | DRAM ' $L/mat_vec-$1.txt | awk -F'|' '$5+0==1 {printf "%s@%s %s; ", $2, $4, $9}')"
done; pack
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
