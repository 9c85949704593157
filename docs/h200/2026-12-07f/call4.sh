# Call 4 (seventeenth session), on call 3's warm machine (its /tmp kept): q30 decode
# M / N alternating (tg only, 3 reps), the router kernel's own time, then the q2_k file.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
($D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q2_k -o /tmp/q30k.gguf) > $L/gen.txt 2>&1 &
GP=$!
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M N M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 40 $B bench -m /tmp/q30.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$b-q30-tg.txt 2>&1
  echo "$b q30 tg128: $(t $L/$b-q30-tg.txt tg128) (t=$SECONDS)"; cat $L/$b-q30-tg.txt >> $L/$b-q30-tg-all.txt
done; pack
$D/vkgraph test-ops --perf -o moe_router_topk > $L/perf-router.txt 2>&1; grep -E "2048" $L/perf-router.txt | cut -c1-170
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90; rm -f /tmp/q30.gguf
for b in M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30k.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30k.txt 2>&1
  echo "$b q30 q2_k: $(t $L/$b-q30k.txt 'pp512|tg128') (t=$SECONDS)"
done; pack
LB=/tmp/ll/build/bin/llama-bench
[ -x $LB ] && timeout 80 $LB -m /tmp/q30k.gguf -p 512 -n 128 -r 2 -ngl 99 -fa 1 > $L/llama-q30k.txt 2>&1
echo "q30k llama.cpp CUDA: $(t $L/llama-q30k.txt 'pp512|tg128') (t=$SECONDS)"; pack; rm -rf $OUT/logs
