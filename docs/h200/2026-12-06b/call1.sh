# Call 1 (2026-12-06, ninth session): the coopmat prompt kernel, three builds —
#   A = main 407af1f (BK = 32, two shared buffers, x read as f32),
#   B = branch coopmat-f16-x (x converted to f16 once per matmul, constant X_F16),
#   C = B + BK = 64 with one shared buffer (the next step waits in registers) and the W
#       tile fetched by 16-value chunks (packed bytes and scales loaded once per chunk).
# C's GPU tests (vk_mul_mat; model_vulkan's prompt and MoE tests), the prefill kernel
# bench B vs C, then pp512 A/B/C alternated on llama-8b q4_0 and qwen3-30b-a3b q4_0.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "driver|api|name" $L/devices.txt | head -3
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 150 $D/vk_mul_mat --test-threads 1 > $L/t-vk_mul_mat.txt 2>&1; echo "vk_mul_mat rc=$? $(grep -c 'x=f16' $L/t-vk_mul_mat.txt) x=f16 lines; $(grep 'test result' $L/t-vk_mul_mat.txt | cut -c1-60)")
(cd $man && timeout 100 $D/model_vulkan --test-threads 1 prompt_matmuls moe_prompt_then > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-60)")
pack
for b in B C; do
  if [ $b = B ]; then P=$AB/prefill-b; else P=$D/prefill; fi
  VKGRAPH_PIPELINE_STATS=1 VKGRAPH_BENCH_TYPES=q4_0,q4_K,q6_K,q8_0,f16 timeout 60 $P > $L/prefill-$b.txt 2>&1
  echo "$b: $(grep coopmat $L/prefill-$b.txt | grep '^|' | awk -F'|' '{printf "%s %s %s %s TF; ", $2, $3, $4, $8}')"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; tail -2 $L/gen.txt
for m in l8 q30; do
  for i in 1 2; do
    for b in a b c; do
      if [ $b = c ]; then X=$V; else X=$AB/vkgraph-$b; fi
      timeout 40 $X bench -m /tmp/$m.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-$m-$b$i.txt 2>&1
    done
    echo "$m #$i A: $(grep pp512 $L/pp-$m-a$i.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}') B: $(grep pp512 $L/pp-$m-b$i.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}') C: $(grep pp512 $L/pp-$m-c$i.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}')"
  done
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
