# Call 2c (sixteenth session): the least of call2b.sh that fits ~250 s of device time —
# no llama.cpp build. N = main 9c66276 (target/device.tar.xz), M = main a5972ef
# (target/vkgraph-M.xz): qwen3-30b-a3b q4_0 tg128 M / N alternating, N's decode profile,
# vk_moe on the GPU.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
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
  timeout 40 $B bench -m /tmp/q30.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$b-q30.txt 2>&1
  echo "$b q30: $(t $L/$b-q30.txt 'tg128') (t=$SECONDS)"; cat $L/$b-q30.txt >> $L/$b-q30-all.txt
done; pack
timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 0 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A11 "per stage" $L/N-q30-profile.txt | head -13; pack
man=$(cat $D/MANIFEST_DIR)
(cd $man && timeout 60 $D/vk_moe --test-threads 1 > $L/test-vk_moe.txt 2>&1; echo "vk_moe rc=$? $(grep -E '^test result' $L/test-vk_moe.txt | tail -1)")
pack; rm -rf $OUT/logs
