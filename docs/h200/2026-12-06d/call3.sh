# Call 3 (2026-12-06, eleventh session; call 2 cut to what the remaining device time
# allows): I = main 271996f in target/device.tar.xz (the op table, per-backend arena and
# scratch, weights streamed across tensors): all 14 GPU test binaries (op_table new), then
# op_table under the validation layer.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; cat $L/tests-summary.txt; pack
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/op_table --test-threads 1 > $L/val-op_table.txt 2>&1; echo "I op_table (validated) rc=$? $(grep 'test result' $L/val-op_table.txt | cut -c1-60)")
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
