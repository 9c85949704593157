# Call 2 (2026-12-07, thirteenth session; the last device time): main 4b968f3
# (target/device.tar.xz): q2_K / q3_K code chunks merged (n <= 3), the integer-dot fused mat-vec
# the default. Its GPU tests of the integer-dot kernels (op suite, model_vulkan,
# vk_mul_mat), then llama-8b q4_0 tg128 default / VKGRAPH_MMVQ_LAYER=0 / default.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; V=$D/vkgraph; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
$V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf > $L/gen.txt 2>&1 &
GP=$!
for o in mul_mat_vecq mul_mat_vecq_layer mul_mat_vecq_id; do
  $V test-ops -o $o > $L/M-test-ops-$o.txt 2>&1; echo "M test-ops -o $o rc=$? $(tail -1 $L/M-test-ops-$o.txt | cut -c1-110)"
done; pack
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in model_vulkan vk_mul_mat; do
  (cd "$man" && timeout 100 $D/$t --test-threads 1 > "$L/M-$t.txt" 2>&1; echo "M $t rc=$? $(res $L/M-$t.txt)")
done; pack
wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
timeout 40 $V bench -m /tmp/l8.gguf -p 0 -n 128 -r 3 --qkv auto > $L/M-l8.txt 2>&1
VKGRAPH_MMVQ_LAYER=0 timeout 40 $V bench -m /tmp/l8.gguf -p 0 -n 128 -r 3 --qkv auto > $L/M0-l8.txt 2>&1
timeout 40 $V bench -m /tmp/l8.gguf -p 0 -n 128 -r 3 --qkv auto > $L/Mb-l8.txt 2>&1
echo "l8 tg128 default: $(t $L/M-l8.txt tg128) MMVQ_LAYER=0: $(t $L/M0-l8.txt tg128) default again: $(t $L/Mb-l8.txt tg128)"
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
