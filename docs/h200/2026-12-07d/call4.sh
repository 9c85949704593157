# Call 4 (fifteenth session): where MoE and small-model decode time goes now. N = branch
# attn-one-pass d275fe3's build without the K/V prefetch (target/device.tar.xz: decode
# code as main). qwen3-30b-a3b q4_0 (gen-model, streamed) and qwen3-0.6b q4_0: tg128 and a
# per-stage / per-node profile of one decode step each; the 30B's pp512 too.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]" $L/devices.txt | head -1
$D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf > $L/gen.txt 2>&1
timeout 60 $D/vkgraph bench -m /tmp/q06.gguf -p 0 -n 128 -r 3 --qkv auto --profile > $L/q06-profile.txt 2>&1
grep -E "tg128" $L/q06-profile.txt | head -2; pack
$D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf >> $L/gen.txt 2>&1
grep wrote $L/gen.txt | cut -c1-90; echo "t=$SECONDS"
timeout 120 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 128 -r 2 --qkv auto --profile > $L/q30-profile.txt 2>&1
grep -E "pp512|tg128" $L/q30-profile.txt | head -3; echo "t=$SECONDS"
pack; rm -rf $OUT/logs
