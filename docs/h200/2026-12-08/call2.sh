# Call 2: the prompt speed A/B on a quiet machine (no build beside it), alternating N
# (2f5077d) and H (main): pp512 (and tg128, unchanged code) on qwen3-30b-a3b q4_0 (the
# MoE prompt whose expert matmuls dequantize each expert's weights for ~32 pairs: the case
# the halves are for), llama-8b q4_0 and q4_k_m, qwen3-0.6b q4_0; then one prompt batch's
# per-node profile of H on the MoE; tg128 with and without a LoRA adapter (both builds).
# llama.cpp CUDA beside H: call3.sh.
# Carry: ["target/device.tar.xz","target/vkgraph-N.xz",".gl"]
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
xz -dc target/vkgraph-N.xz > /tmp/vkgraph-N && chmod +x /tmp/vkgraph-N
bin() { [ $1 = N ] && echo /tmp/vkgraph-N || echo $D/vkgraph; }
(for m in "qwen3moe qwen3-30b-a3b q4_0 q30" "llama llama-8b q4_0 l8" "llama llama-8b q4_k_m l8km" "qwen3 qwen3-0.6b q4_0 q06"; do set -- $m
  [ -f /tmp/$4.gguf ] || $D/vkgraph gen-model --arch $1 --preset $2 --quant $3 -o /tmp/$4.gguf; done) > $L/gen.txt 2>&1
grep wrote $L/gen.txt | cut -c1-90; echo "t=$SECONDS"
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
for m in q30 l8 l8km q06; do
  runs="N H"; [ $m = q30 ] && runs="N H N H"
  for b in $runs; do
    timeout 120 $(bin $b) bench -m /tmp/$m.gguf -p 512 -n 128 -r 2 --qkv auto >> $L/bench-$b-$m.txt 2>&1
    echo "$b $m: $(tail -3 $L/bench-$b-$m.txt | t /dev/stdin 'pp512|tg128') (t=$SECONDS)"
  done; pack
done
# LoRA (issue 13: within 10 % of the base): a rank-16 adapter on attn_q, attn_v, ffn_up;
# H folds ffn_up's SwiGLU into its B factor (MUL_MAT_ADD_SWIGLU), N keeps it apart.
$D/vkgraph gen-lora -m /tmp/q06.gguf -o /tmp/q06-lora.gguf --targets attn_q,attn_v,ffn_up > /dev/null 2>&1
for b in N H N H; do
  for lo in "" "--lora /tmp/q06-lora.gguf"; do
    timeout 60 $(bin $b) bench -m /tmp/q06.gguf -p 0 -n 128 -r 3 --qkv auto $lo >> $L/lora-$b.txt 2>&1
    echo "$b q06 ${lo:-base}: $(tail -1 $L/lora-$b.txt | t /dev/stdin tg128) (t=$SECONDS)"
  done
done; pack
timeout 90 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 8 -r 1 --qkv auto --profile > $L/profile-H-q30.txt 2>&1
grep -A8 "pp512 (one prompt batch)" $L/profile-H-q30.txt | cut -c1-150
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
