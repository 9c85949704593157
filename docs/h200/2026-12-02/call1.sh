# Call 1 (2026-12-02): GPU suite with the upload ring, the radix TOP_K merge and the coopmat
# tile experiments; prefill kernel sweep with pipeline statistics; A/B (vkgraph-a = d66c318
# + tile experiments, no ring/radix) on sampled decode; llama-bench in the same command.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AB=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph; VA=$PWD/target/vkgraph-a
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
( for q in q4_0 q2_k; do $V gen-model --arch qwen3 --preset qwen3-0.6b --quant $q -o /tmp/q06-$q.gguf; done
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS prefill kernels"
(cd $man && VKGRAPH_PIPELINE_STATS=1 timeout 120 $D/prefill > $L/prefill.txt 2>&1); grep -E "coopmat" $L/prefill.txt | grep -E "q4_0|f16|q4_K" | grep -v pipeline | cut -c1-90; grep -E "^pipeline mul_mat_coopmat_(q4_0|f16)" $L/prefill.txt | cut -c1-400; pack
echo "t=$SECONDS tests"; bash scripts/device-run.sh tests | grep "rc=" | tr '\n' ' '; echo; pack
grep -E "NOT TESTED|FAILED|panicked" $L/tests.txt | head -10
(cd $man && timeout 100 $V test-ops -o top_k > $L/test-ops-topk.txt 2>&1; echo "test-ops top_k rc=$?"; tail -1 $L/test-ops-topk.txt)
(cd $man && timeout 120 $D/vk_ops --ignored perf --nocapture > $L/perf.txt 2>&1); grep -E "top_k" $L/perf.txt | sed "s/.Vulkan.NVIDIA H200. //"
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 150 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vk_mul_mat --test-threads 1 > $L/val-vk_mul_mat.txt 2>&1; echo "vk_mul_mat validated rc=$? $(grep 'test result' $L/val-vk_mul_mat.txt)")
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 120 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vk_runtime --test-threads 1 > $L/val-vk_runtime.txt 2>&1; echo "vk_runtime validated rc=$? $(grep 'test result' $L/val-vk_runtime.txt)")
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 100 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vkgraph test-ops --validate > $L/test-ops-validated.txt 2>&1; echo "test-ops --validate rc=$?"; tail -2 $L/test-ops-validated.txt)
pack
echo "t=$SECONDS wait gen"; wait $GP
M2="-m /tmp/q06-q4_0.gguf -m /tmp/l8.gguf"
for i in 1 2; do
  timeout 60 $VA bench $M2 -p 0 -n 128 -r 2 --qkv auto --sampled > $L/ab-a$i.txt 2>&1
  timeout 60 $V bench $M2 -p 0 -n 128 -r 2 --qkv auto --sampled > $L/ab-b$i.txt 2>&1
  echo "A$i: $(grep tg128 $L/ab-a$i.txt | awk -F'|' '{print $(NF-1)}' | tr '\n' ' ') B$i: $(grep tg128 $L/ab-b$i.txt | awk -F'|' '{print $(NF-1)}' | tr '\n' ' ')"
done
pack
echo "t=$SECONDS wait anchor"; wait $AB; tail -1 $L/anchor.txt
B=/tmp/ll/build/bin/llama-bench
M="-m /tmp/q06-q4_0.gguf -m /tmp/q06-q2_k.gguf -m /tmp/l8.gguf"
{ timeout 150 $V bench $M -p 512 -n 128 -r 3 --qkv auto
  timeout 90 $B $M -p 512 -n 128 -r 3 -ngl 99 -fa 1; } > $L/bench.txt 2>&1
grep -E "tg128|pp512" $L/bench.txt | grep -v "speedup"; pack
for m in q06-q4_0 l8; do
  timeout 40 $V run -m /tmp/$m.gguf -p "Once upon a time" -n 128 > $L/run-$m.txt 2>&1
  echo "run $m: $(grep generation $L/run-$m.txt | tail -1)"
done
echo "t=$SECONDS"
pack; rm -rf $OUT/logs
