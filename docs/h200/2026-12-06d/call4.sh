# Call 4 (2026-12-06, eleventh session; call 3 cut again to the device time left):
# I = main 271996f in target/device.tar.xz: the GPU test binaries the refactor touches
# most (op_table new, model_vulkan, vk_ops, layer_split, kv_sequences, vk_runtime, lora),
# then op_table under the validation layer.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
mkdir -p /tmp/dev && tar xJf target/device.tar.xz -C /tmp/dev
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); tgt=$(cat $D/TARGET_DIR)
mkdir -p "$(dirname "$man")" "$tgt"; [ -e "$man" ] || ln -s "$PWD" "$man"; cp $D/vkgraph "$tgt/vkgraph"
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
for t in op_table model_vulkan vk_ops layer_split kv_sequences vk_runtime lora; do
  (cd "$man" && timeout 150 $D/$t --test-threads 1 > "$L/$t.txt" 2>&1; echo "$t rc=$? $(grep 'test result' $L/$t.txt | cut -c1-60)")
  pack
done
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 40 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/op_table --test-threads 1 > $L/val-op_table.txt 2>&1; echo "op_table (validated) rc=$? $(grep 'test result' $L/val-op_table.txt | cut -c1-60)")
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
