# Call 2 (twentieth session): N = main 8b25b71 (target/device.tar.xz: the RoPE fold's
# owner attends its new row from shared memory, KPRE with VPRE; bench and profile warm-ups), M = main
# f1c0725 (target/vkgraph-M19.xz: call 1's N, the baseline that also ran beside llama.cpp
# CUDA in call 1). The changed kernel under the validation layer first (the test loop),
# then M / N / N with VKGRAPH_ATTN_VPRE=1 at depth, tg128, N's profiles, benches/attention.
# No llama.cpp build (device time): call 1's CUDA figures, through M.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M19.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1 &
GP=$!
SMI=$(command -v nvidia-smi || ls /usr/local/nvidia/bin/nvidia-smi 2>/dev/null)
[ -n "$SMI" ] && ($SMI --query-gpu=timestamp,pstate,clocks.sm,clocks.mem,power.draw,utilization.gpu --format=csv -lms 500 > $L/smi.csv 2>&1 &)
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1$3.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1$3.txt | tail -1) (t=$SECONDS)"); }
vt vk_attention 90 ""
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
vt model_vulkan 120 forced_decode_paths
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
ab() { # model, variants, bench args
  for b in $2; do
    B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M; E=VKGRAPH_X=0; [ $b = Nvpre ] && E=VKGRAPH_ATTN_VPRE=1
    env $E timeout 100 $B bench -m /tmp/$1.gguf $3 --qkv auto >> $L/$b-$1.txt 2>&1
    echo "$b $1 $3: $(tail -$4 $L/$b-$1.txt | t /dev/stdin 'tg|pp') (t=$SECONDS)"
  done; pack
}
for m in l8 q06; do ab $m "M N" "-p 0 -n 64 -d 0,512,2048,4096 -r 2" 4; done
for m in q06 l8; do ab $m "M N" "-p 512 -n 128 -r 2" 2; done
prof() {
  timeout 100 $D/vkgraph bench -m /tmp/$1.gguf -p 0 -n 16 -d $2 -r 1 --qkv auto --profile > $L/N-$1-profile.txt 2>&1
  grep -E "^### |GPU per|ATTENTION" $L/N-$1-profile.txt | cut -c1-140; pack
}
prof q06 0,512,4096
prof l8 0,4096
for m in l8 q06; do ab $m "Nvpre" "-p 0 -n 64 -d 0,512,2048,4096 -r 2" 4; done
vt model_vulkan 90 attention_replans
[ $SECONDS -lt 420 ] && { timeout $((540 - SECONDS)) $D/attention > $L/attention.md 2>&1; grep -E "4096 \| 4096|512 \| 512" $L/attention.md | head -40; }
pkill -f "query-gpu"
pack; rm -rf $OUT/logs
