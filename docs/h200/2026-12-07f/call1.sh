# Call 1 (seventeenth session): the sixteenth session's call2b.sh, unchanged but for the
# build. N = main 173db32 (all three MoE decode folds, tests/vk_moe.rs, the review mend;
# target/device.tar.xz), M = main a5972ef (the fifteenth session's close;
# target/vkgraph-M.xz); llama.cpp 0c1e570 CUDA's llama-bench builds in the background.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
$D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf > $L/gen.txt 2>&1
grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M N M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30.txt 2>&1
  echo "$b q30: $(t $L/$b-q30.txt 'pp512|tg128') (t=$SECONDS)"; cat $L/$b-q30.txt >> $L/$b-q30-all.txt
done; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 0 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A11 "per stage" $L/N-q30-profile.txt | head -13; pack
$D/vkgraph test-ops --perf -o moe_router_topk > $L/perf-router.txt 2>&1; grep -E "2048" $L/perf-router.txt | cut -c1-160
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
for o in moe_router_topk mul_mat_id mul_mat_vecq_id; do
  VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 90 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-$o.txt 2>&1
  echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/validated-$o.txt | tail -2 | tr '\n' ' ' | cut -c1-170)"
done
man=$(cat $D/MANIFEST_DIR)
for t in vk_moe model_vulkan; do
  (cd $man && timeout 150 $D/$t --test-threads 1 > $L/test-$t.txt 2>&1; echo "$t rc=$? $(grep -E '^test result' $L/test-$t.txt | tail -1)")
done
pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
[ -x $LB ] && timeout 90 $LB -m /tmp/q30.gguf -p 512 -n 128 -r 2 -ngl 99 -fa 1 > $L/llama-q30.txt 2>&1
echo "q30 llama.cpp CUDA: $(t $L/llama-q30.txt 'pp512|tg128') (t=$SECONDS)"; pack
$D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q2_k -o /tmp/q30k.gguf >> $L/gen.txt 2>&1
for b in M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30k.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30k.txt 2>&1
  echo "$b q30 q2_k: $(t $L/$b-q30k.txt 'pp512|tg128') (t=$SECONDS)"
done; pack
[ -x $LB ] && timeout 90 $LB -m /tmp/q30k.gguf -p 512 -n 128 -r 2 -ngl 99 -fa 1 > $L/llama-q30k.txt 2>&1
echo "q30k llama.cpp CUDA: $(t $L/llama-q30k.txt 'pp512|tg128') (t=$SECONDS)"; pack
(cd $man && timeout 100 $D/vk_ops --test-threads 1 > $L/test-vk_ops.txt 2>&1; echo "vk_ops rc=$? $(grep -E '^test result' $L/test-vk_ops.txt | tail -1)")
pack; rm -rf $OUT/logs
