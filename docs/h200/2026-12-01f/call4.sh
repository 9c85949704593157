L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AB=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
( for q in q4_0 q2_k; do $V gen-model --arch qwen3 --preset qwen3-0.6b --quant $q -o /tmp/q06-$q.gguf; done
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS tests"; bash scripts/device-run.sh tests | grep "rc=" | tr '\n' ' '; echo; pack
(cd $man && timeout 200 $D/vk_ops --ignored perf --nocapture > $L/perf.txt 2>&1); grep -E "attention|top_k" $L/perf.txt | sed "s/.Vulkan.NVIDIA H200. //"
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 120 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/model_vulkan --test-threads 1 > $L/val-model_vulkan.txt 2>&1; echo "model_vulkan validated rc=$? $(grep 'test result' $L/val-model_vulkan.txt)")
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 100 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/vkgraph test-ops --validate > $L/test-ops-validated.txt 2>&1; echo "test-ops --validate rc=$?"; tail -2 $L/test-ops-validated.txt)
pack
echo "t=$SECONDS wait gen+anchor"; wait $GP; wait $AB; tail -1 $L/anchor.txt
B=/tmp/ll/build/bin/llama-bench
M="-m /tmp/q06-q4_0.gguf -m /tmp/q06-q2_k.gguf -m /tmp/l8.gguf"
echo "t=$SECONDS bench"
{ timeout 150 $V bench $M -p 512 -n 128 -r 3 --qkv auto --sampled
  timeout 90 $B $M -p 512 -n 128 -r 3 -ngl 99 -fa 1; } > $L/bench.txt 2>&1
grep -E "tg128|pp512" $L/bench.txt | grep -v "speedup"; pack
{ timeout 60 $V bench -m /tmp/q06-q4_0.gguf -m /tmp/l8.gguf -p 0 -n 64 -d 4096 -r 2 --qkv auto
  timeout 50 $B -m /tmp/q06-q4_0.gguf -m /tmp/l8.gguf -p 0 -n 64 -d 4096 -r 2 -ngl 99 -fa 1; } > $L/bench-d4096.txt 2>&1
grep -E "tg64" $L/bench-d4096.txt; pack
for m in q06-q4_0 l8; do
  timeout 40 $V run -m /tmp/$m.gguf -p "Once upon a time" -n 128 > $L/run-$m.txt 2>&1
  timeout 40 $V run -m /tmp/$m.gguf -p "Once upon a time" -n 128 --temp 0 > $L/run-$m-greedy.txt 2>&1
  echo "run $m: $(grep -iE 't/s|tok' $L/run-$m.txt | tail -2 | tr '\n' ' ') | greedy: $(grep -iE 't/s|tok' $L/run-$m-greedy.txt | tail -2 | tr '\n' ' ')"
done
timeout 25 $V bench -m /tmp/q06-q4_0.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/profile-q06.txt 2>&1; grep -E "ATTENTION|GPU time|wall" $L/profile-q06.txt | head -8
echo "t=$SECONDS"
pack; rm -rf $OUT/logs
