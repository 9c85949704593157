# Call 1 (2026-12-06): MUL_MAT_ID grouped by expert for prompt batches (moe_group +
# mul_mat_id_coopmat) and the expert-indexed float mat-vec for decode (mul_mat_vec_id):
# the op suite and the GPU tests that take those paths on the H200 (plain and validated),
# then qwen3-30b-a3b q4_0 / q2_k and llama-8b q4_0 with `vkgraph bench` (grouping on, and
# off: VKGRAPH_MOE_GROUP=0) beside llama.cpp CUDA's llama-bench built in the same command.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AB=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30-q4_0.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q2_k -o /tmp/q30-q2_k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS tests"
(cd $man && timeout 100 $V test-ops -o mul_mat_id > $L/test-ops-id.txt 2>&1; echo "test-ops mul_mat_id rc=$?"; tail -1 $L/test-ops-id.txt)
for t in vk_mul_mat model_vulkan; do
  (cd $man && timeout 200 $D/$t --test-threads 1 > $L/t-$t.txt 2>&1; echo "$t rc=$? $(grep 'test result' $L/t-$t.txt | tail -1 | cut -c1-60)")
done
grep -E "qwen3moe" $L/t-model_vulkan.txt | grep prompt | head -4
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 150 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/model_vulkan --test-threads 1 prompt_matmuls > $L/val-model_vulkan.txt 2>&1; echo "model_vulkan prompt_matmuls validated rc=$? $(grep 'test result' $L/val-model_vulkan.txt | cut -c1-60)")
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 100 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vkgraph test-ops --validate -o mul_mat_id > $L/test-ops-id-validated.txt 2>&1; echo "test-ops -o mul_mat_id --validate rc=$?"; tail -2 $L/test-ops-id-validated.txt)
pack
echo "t=$SECONDS wait gen"; wait $GP; tail -3 $L/gen.txt; ls -la /tmp/*.gguf
M="-m /tmp/q30-q4_0.gguf -m /tmp/q30-q2_k.gguf -m /tmp/l8.gguf"
echo "t=$SECONDS bench"
timeout 150 $V bench $M -p 512 -n 128 -r 3 --qkv auto > $L/bench.txt 2>&1
grep -E "tg128|pp512" $L/bench.txt | grep -v speedup; pack
VKGRAPH_MOE_GROUP=0 timeout 60 $V bench -m /tmp/q30-q4_0.gguf -p 512 -n 0 -r 2 --qkv auto > $L/bench-nogroup.txt 2>&1
grep -E "pp512" $L/bench-nogroup.txt | grep -v speedup; pack
echo "t=$SECONDS wait anchor"; wait $AB; tail -1 $L/anchor.txt
B=/tmp/ll/build/bin/llama-bench
for m in q30-q4_0 q30-q2_k l8; do
  [ $SECONDS -lt 540 ] || break
  timeout $((585 - SECONDS)) $B -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 >> $L/llama-bench.txt 2>&1
done
grep -E "tg128|pp512" $L/llama-bench.txt
echo "t=$SECONDS"
pack; rm -rf $OUT/logs
