# Call 3 (2026-12-02): the uvec4-shared coopmat kernel as the default: the GPU tests that
# take the prompt path, test-ops validated, the prefill kernel table, and vkgraph bench
# beside llama.cpp CUDA's llama-bench (built here) in the same command.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AB=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( for q in q4_0 q2_k; do $V gen-model --arch qwen3 --preset qwen3-0.6b --quant $q -o /tmp/q06-$q.gguf; done
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
for t in vk_mul_mat model_vulkan parity kv_sequences layer_split lora; do
  (cd $man && timeout 150 $D/$t --test-threads 1 --skip smollm2_matches_llama_cpp > $L/t-$t.txt 2>&1; echo "$t rc=$? $(grep 'test result' $L/t-$t.txt | tail -1 | cut -c1-40)")
done
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 100 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vkgraph test-ops --validate > $L/test-ops-validated.txt 2>&1; echo "test-ops --validate rc=$?"; tail -2 $L/test-ops-validated.txt)
pack
(cd $man && VKGRAPH_PIPELINE_STATS=1 timeout 60 $D/prefill > $L/prefill.txt 2>&1); grep -E "coopmat" $L/prefill.txt | grep -v pipeline | cut -c1-80 | tr '\n' ';' | head -c 1500; echo; pack
echo "t=$SECONDS wait gen+anchor"; wait $GP; wait $AB; tail -1 $L/anchor.txt
B=/tmp/ll/build/bin/llama-bench
M="-m /tmp/q06-q4_0.gguf -m /tmp/q06-q2_k.gguf -m /tmp/l8.gguf"
echo "t=$SECONDS bench"
{ timeout 120 $V bench $M -p 512 -n 128 -r 3 --qkv auto --sampled
  timeout 90 $B $M -p 512 -n 128 -r 3 -ngl 99 -fa 1; } > $L/bench.txt 2>&1
grep -E "tg128|pp512" $L/bench.txt | grep -v "speedup"; pack
for m in q06-q4_0 l8; do
  timeout 30 $V run -m /tmp/$m.gguf -p "Once upon a time" -n 128 > $L/run-$m.txt 2>&1
  echo "run $m: $(grep generation $L/run-$m.txt | tail -1)"
done
echo "t=$SECONDS"
pack; rm -rf $OUT/logs
