L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
( $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 100 $V test-ops -o top_k > $L/test-ops-topk.txt 2>&1; echo "test-ops top_k rc=$?"; tail -1 $L/test-ops-topk.txt)
(cd $man && timeout 100 $D/model_vulkan --test-threads 1 top_k > $L/model_vulkan_topk.txt 2>&1; echo "model_vulkan top_k rc=$? $(grep 'test result' $L/model_vulkan_topk.txt)")
(cd $man && timeout 100 $D/vk_ops --ignored perf --nocapture > $L/perf.txt 2>&1); grep -E "top_k" $L/perf.txt | sed "s/.Vulkan.NVIDIA H200. //"
wait $GP
timeout 80 $V bench -m /tmp/q06.gguf -m /tmp/l8.gguf -p 0 -n 128 -r 3 --qkv auto --sampled > $L/bench.txt 2>&1; grep tg128 $L/bench.txt
for m in q06 l8; do
  timeout 40 $V run -m /tmp/$m.gguf -p "Once upon a time" -n 128 > $L/run-$m.txt 2>&1
  echo "run $m: $(grep generation $L/run-$m.txt | tail -1)"
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
