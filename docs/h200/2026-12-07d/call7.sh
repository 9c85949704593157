# Call 7 (fifteenth session): is the mat_vec sweep's slowdown of its later types (call 6:
# q5_0 int8 36 µs, q6_K 97 µs at 4096 x 14336, against 21 and 26-53 in earlier sessions)
# the bench's, not the kernels'? Each type in its own process, m = 4096, k = 14336 only.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
for ty in q6_K q5_K q3_K q2_K q4_K q8_0 q5_1 q5_0 q4_1 q4_0 f16 bf16 f32; do
  VKGRAPH_BENCH_TYPES=$ty VKGRAPH_BENCH_SHAPES=4096x14336 timeout 20 $D/mat_vec > $L/mat_vec-$ty.txt 2>&1
  grep -E "\| 1 \| (int8|float) \| DRAM" $L/mat_vec-$ty.txt | awk -F'|' '{printf "%s %s %s %s %s\n", $2, $6, $8, $10, $11}' | tr -s ' '
  [ $SECONDS -gt 130 ] && break
done
pack; rm -rf $OUT/logs
