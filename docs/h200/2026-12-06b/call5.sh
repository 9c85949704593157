# Call 5 (2026-12-06, ninth session; binaries of branch coopmat-64x256, 57351ee): E = the dense coopmat tile 64 x 256 (each
# dequantized W value serves 256 tokens; staging in the W tile's memory; subgroups past
# the batch skip their products), the expert-indexed one 128 x 128. E's tests (vk_mul_mat,
# model_vulkan, the op suite's matmul cases, validated), the prefill kernel bench D vs E,
# then pp512 D vs E alternated on llama-8b, qwen3-30b-a3b and qwen3-0.6b q4_0.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 90 $D/vk_mul_mat --test-threads 1 mul_mat_coopmat > $L/t-vk_mul_mat.txt 2>&1; echo "vk_mul_mat mul_mat_coopmat rc=$? $(grep 'test result' $L/t-vk_mul_mat.txt | cut -c1-60)")
(cd $man && timeout 90 $D/model_vulkan --test-threads 1 prompt_matmuls moe_prompt_then > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-60)")
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
for o in mul_mat_id mul_mat_vecq_id; do
  (cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o $o > $L/val-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/val-$o.txt | tr '\n' ' ' | cut -c1-160)")
done; pack
for b in D E; do
  if [ $b = D ]; then P=$AB/prefill-d; else P=$D/prefill; fi
  VKGRAPH_PIPELINE_STATS=1 VKGRAPH_BENCH_TYPES=q4_0,q4_K timeout 60 $P > $L/prefill-$b.txt 2>&1
  echo "$b: $(grep coopmat $L/prefill-$b.txt | grep '^|' | awk -F'|' '{printf "%s %s %s %s: %s TF; ", $2, $3, $4, $6, $8}')"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; tail -1 $L/gen.txt
for m in l8 q30; do
  for i in 1; do
    for b in d e; do
      if [ $b = e ]; then X=$V; else X=$AB/vkgraph-d; fi
      timeout 40 $X bench -m /tmp/$m.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-$m-$b$i.txt 2>&1
    done
    echo "$m #$i D: $(grep pp512 $L/pp-$m-d$i.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}') E: $(grep pp512 $L/pp-$m-e$i.txt | grep -v speedup | awk -F'|' '{print $(NF-1)}')"
  done
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
