# Call 3 (seventeenth session): call2.sh cut to what fits the device time left after
# refused starts (~430 s). N = main 9e2b708's code (target/device.tar.xz: split-K,
# the router's rank top-k, VKGRAPH_ID_TILE), M = main a5972ef (target/vkgraph-M.xz).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
($D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
for o in moe_route mul_mat_id; do
  (VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(tail -2 $L/validated-$o.txt | tr '\n' ' ' | cut -c1-200)")
done
man=$(cat $D/MANIFEST_DIR)
(cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout 80 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vk_mul_mat --test-threads 1 mul_mat_coopmat > $L/validated-vk_mul_mat.txt 2>&1; echo "vk_mul_mat mul_mat_coopmat (validated) rc=$? $(grep -E '^test result' $L/validated-vk_mul_mat.txt | tail -1) (t=$SECONDS)")
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30.txt 2>&1
  echo "$b q30: $(t $L/$b-q30.txt 'pp512|tg128') (t=$SECONDS)"
done; pack
for s in 0 1; do
  VKGRAPH_SPLIT_K=$s timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/N-q30-sk$s.txt 2>&1
  echo "N q30 VKGRAPH_SPLIT_K=$s: $(t $L/N-q30-sk$s.txt pp512) (t=$SECONDS)"
done; pack
for v in 1 2 3; do
  VKGRAPH_ID_TILE=$v timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/N-q30-idtile$v.txt 2>&1
  echo "N q30 VKGRAPH_ID_TILE=$v: $(t $L/N-q30-idtile$v.txt pp512) (t=$SECONDS)"
done; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
[ -x $LB ] && timeout 90 $LB -m /tmp/q30.gguf -p 512 -n 128 -r 2 -ngl 99 -fa 1 > $L/llama-q30.txt 2>&1
echo "q30 llama.cpp CUDA: $(t $L/llama-q30.txt 'pp512|tg128') (t=$SECONDS)"; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A11 "per stage" $L/N-q30-profile.txt | head -13; grep -A8 "pp512 (one prompt" $L/N-q30-profile.txt | head -10
pack; rm -rf $OUT/logs
