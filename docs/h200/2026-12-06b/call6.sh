# Call 6 (2026-12-06, ninth session; little device time left): the minimum for branch
# coopmat-64x256 (57351ee, the 64 x 256 dense coopmat tile): its coopmat tests, the
# prefill kernel bench D (main) vs E, pp512 on llama-8b q4_0 D vs E.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 80 $D/vk_mul_mat --test-threads 1 mul_mat_coopmat > $L/t-vk_mul_mat.txt 2>&1; echo "vk_mul_mat mul_mat_coopmat rc=$? $(grep 'test result' $L/t-vk_mul_mat.txt | cut -c1-60)")
(cd $man && timeout 60 $D/model_vulkan --test-threads 1 prompt_matmuls moe_prompt_then > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-60)")
pack
for b in D E; do
  if [ $b = D ]; then P=$AB/prefill-d; else P=$D/prefill; fi
  VKGRAPH_BENCH_TYPES=q4_0 timeout 30 $P > $L/prefill-$b.txt 2>&1
  echo "$b: $(grep coopmat $L/prefill-$b.txt | grep '^|' | awk -F'|' '{printf "%s %s %s: %s TF; ", $3, $4, $6, $8}')"
done; pack
wait $GP
for b in d e d e; do
  if [ $b = e ]; then X=$V; else X=$AB/vkgraph-d; fi
  timeout 30 $X bench -m /tmp/l8.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-l8-$b.txt 2>&1
  echo "l8 $b: $(grep pp512 $L/pp-l8-$b.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}')"
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
