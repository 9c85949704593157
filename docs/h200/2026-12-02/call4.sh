# Call 4 (2026-12-02): context shift on the H200 (tests/kv_shift.rs plain and under the
# Khronos 1.4 layer, tests/cli.rs's context-shift run), vk_runtime (pipeline statistics
# with VK_KHR_pipeline_executable_properties), and `run --context-shift` on qwen3-0.6b.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf > $L/gen.txt 2>&1 &
GP=$!
for t in kv_shift vk_runtime; do
  (cd $man && timeout 120 $D/$t --test-threads 1 --nocapture > $L/t-$t.txt 2>&1; echo "$t rc=$? $(grep 'test result' $L/t-$t.txt | tail -1 | cut -c1-40)")
done
grep -E "NMSE|pipeline_statistics" $L/t-kv_shift.txt $L/t-vk_runtime.txt | head -8
(cd $man && timeout 60 $D/cli --test-threads 1 context_shift > $L/t-cli.txt 2>&1; echo "cli context_shift rc=$? $(grep 'test result' $L/t-cli.txt | cut -c1-40)")
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 120 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/kv_shift --test-threads 1 > $L/val-kv_shift.txt 2>&1; echo "kv_shift validated rc=$? $(grep 'test result' $L/val-kv_shift.txt | cut -c1-40)")
pack; wait $GP
RUST_LOG=vkgraph=info timeout 60 $V run -m /tmp/q06.gguf -p "Once upon a time" -n 400 -c 128 --context-shift --keep 4 > $L/run-shift.txt 2> $L/run-shift.err
echo "run --context-shift rc=$? shifts=$(grep -c 'context shift' $L/run-shift.err) $(tail -1 $L/run-shift.err)"
timeout 30 $V run -m /tmp/q06.gguf -p "Once upon a time" -n 128 > $L/run.txt 2>&1; echo "run: $(tail -1 $L/run.txt)"
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
