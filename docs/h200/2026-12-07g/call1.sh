# Call 1 (eighteenth session): N = main f4dfb7d (target/device.tar.xz: the attention
# split-K single-split path), B = main b8a345a (target/vkgraph-B.xz, the seventeenth
# session's close). Alternating A/B on qwen3-0.6b q4_0, llama-8b q4_0 and qwen3-30b-a3b
# q4_0 (gen-model here), llama.cpp 0c1e570 CUDA's llama-bench built and run here, the
# changed kernel's tests under the Khronos validation layer.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done
 $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1.txt | tail -1) (t=$SECONDS)"); }
vt vk_attention 120 ""
vt model_vulkan 120 split_attention
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for m in "q06 3" "l8 2" "q30 2"; do set -- $m
  for b in B N B N; do
    B=$D/vkgraph; [ $b = B ] && B=/tmp/vkgraph-B
    timeout 90 $B bench -m /tmp/$1.gguf -p 512 -n 128 -r $2 --qkv auto >> $L/$b-$1.txt 2>&1
    echo "$b $1: $(t $L/$b-$1.txt 'pp512|tg128' | tail -c 60) (t=$SECONDS)"
  done; pack
done
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in "q06 3" "l8 2" "q30 2"; do set -- $m
  [ -x $LB ] && timeout 100 $LB -m /tmp/$1.gguf -p 512 -n 128 -r $2 -ngl 99 -fa 1 > $L/llama-$1.txt 2>&1
  echo "$1 llama.cpp CUDA: $(t $L/llama-$1.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A10 "per stage" $L/N-q30-profile.txt | head -12
pack; rm -rf $OUT/logs
