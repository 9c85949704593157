# Call 5 (eighteenth session, the device time left): the GPU tests of the session's
# final code (target/device.tar.xz: main after the top-k round refactor), the changed
# areas first, each log packed as it ends (a cut-off run still returns what ran).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
for o in mul_mat_id mul_mat_vecq_id moe_route attention; do
  $D/vkgraph test-ops -o $o > $L/test-ops-$o.txt 2>&1; echo "test-ops -o $o rc=$? $(tail -1 $L/test-ops-$o.txt | cut -c1-120) (t=$SECONDS)"
done; pack
for t in vk_moe vk_attention model_vulkan vk_ops vk_runtime kv_sequences; do
  (cd $man && timeout 150 $D/$t --test-threads 1 > $L/$t.txt 2>&1; echo "$t rc=$? $(grep -E '^test result' $L/$t.txt | tail -1) (t=$SECONDS)"); pack
done
rm -rf $OUT/logs
