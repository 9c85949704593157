# Call 5 (2026-12-06): x converted to f16 once per prompt matmul for the coopmat kernel
# (constant X_F16; the kernel is load-bound, call 4): its tests on the device (vk_mul_mat
# mul_mat_coopmat incl. the x=f16 cases, model_vulkan's prompt and MoE tests), then the
# same-command A/B of pp512: target/vkgraph-a (main before, 8ee72e3) vs the new build,
# alternated, on llama-8b q4_0 and qwen3-30b-a3b q4_0.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
xz -dc target/vkgraph-a.xz > /tmp/vkgraph-a; chmod +x /tmp/vkgraph-a; VA=/tmp/vkgraph-a
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30-q4_0.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 100 $D/vk_mul_mat --test-threads 1 mul_mat_coopmat > $L/t-vk_mul_mat.txt 2>&1; echo "vk_mul_mat mul_mat_coopmat rc=$? $(grep -c 'x=f16' $L/t-vk_mul_mat.txt) x=f16 lines $(grep 'test result' $L/t-vk_mul_mat.txt | cut -c1-40)")
(cd $man && timeout 100 $D/model_vulkan --test-threads 1 prompt_matmuls moe_prompt_then > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-50)")
pack
wait $GP; echo "t=$SECONDS"
for m in l8 q30-q4_0; do
  for i in 1 2; do
    timeout 30 $VA bench -m /tmp/$m.gguf -p 512 -n 0 -r 3 --qkv auto > $L/ab-$m-a$i.txt 2>&1
    timeout 30 $V bench -m /tmp/$m.gguf -p 512 -n 0 -r 3 --qkv auto > $L/ab-$m-b$i.txt 2>&1
    echo "$m A$i: $(grep pp512 $L/ab-$m-a$i.txt | awk -F'|' '{print $(NF-1)}')  B$i: $(grep pp512 $L/ab-$m-b$i.txt | awk -F'|' '{print $(NF-1)}')"
  done
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
