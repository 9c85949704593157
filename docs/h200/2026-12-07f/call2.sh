# Call 2 (seventeenth session; call 1 never ran, its content is folded in here).
# N = this session's build (target/device.tar.xz: main 173db32 + split-K for small-grid
# coopmat prompt matmuls, VKGRAPH_SPLIT_K, + the router's one-pass rank top-k, + the
# experimental expert tiles VKGRAPH_ID_TILE=1..3; see the README here for the commit), M = main a5972ef (the fifteenth session's close;
# target/vkgraph-M.xz). N with VKGRAPH_SPLIT_K=0 is 173db32's prompt path.
# llama.cpp 0c1e570 CUDA's llama-bench builds in the background (ANCHOR-KIT).
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
# The changed kernels and the MoE model under the Khronos validation layer.
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o moe_route > $L/validated-moe_route.txt 2>&1; echo "test-ops --validate -o moe_route rc=$? $(tail -2 $L/validated-moe_route.txt | tr '\n' ' ' | cut -c1-200)")
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 90 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o mul_mat_id > $L/validated-mul_mat_id.txt 2>&1; echo "test-ops --validate -o mul_mat_id rc=$? $(tail -2 $L/validated-mul_mat_id.txt | tr '\n' ' ' | cut -c1-200)")
for t in "vk_mul_mat mul_mat_coopmat 100" "vk_moe - 60" "model_vulkan - 120"; do
  set -- $t; [ "$2" = - ] && set -- $1 "" $3
  (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
    timeout $3 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/$1 --test-threads 1 $2 > $L/validated-$1.txt 2>&1; echo "$1 $2 (validated) rc=$? $(grep -E '^test result' $L/validated-$1.txt | tail -1) (t=$SECONDS)")
done; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M N M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30.txt 2>&1
  echo "$b q30: $(t $L/$b-q30.txt 'pp512|tg128') (t=$SECONDS)"; cat $L/$b-q30.txt >> $L/$b-q30-all.txt
done; pack
for s in 0 1 0 1 400; do
  VKGRAPH_SPLIT_K=$s timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/N-q30-sk$s.txt 2>&1
  echo "N q30 VKGRAPH_SPLIT_K=$s: $(t $L/N-q30-sk$s.txt pp512) (t=$SECONDS)"; cat $L/N-q30-sk$s.txt >> $L/N-q30-sk$s-all.txt
done; pack
for v in 1 2 3; do
  VKGRAPH_ID_TILE=$v timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/N-q30-idtile$v.txt 2>&1
  echo "N q30 VKGRAPH_ID_TILE=$v: $(t $L/N-q30-idtile$v.txt pp512) (t=$SECONDS)"
done; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A11 "per stage" $L/N-q30-profile.txt | head -13
grep -A10 "pp512 (one prompt" $L/N-q30-profile.txt | head -12; pack
VKGRAPH_PIPELINE_STATS=1 RUST_LOG=info timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 1 > $L/N-q30-pstats.txt 2>&1
grep "pipeline" $L/N-q30-pstats.txt | grep -E "coopmat|sum_splits" | cut -c1-230 | head -8
timeout 60 $D/vkgraph dump -m /tmp/q30.gguf -n 512 > $L/N-q30-dump512.txt 2>&1; grep -m3 "k split" $L/N-q30-dump512.txt | cut -c1-200
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
echo "q30k llama.cpp CUDA: $(t $L/llama-q30k.txt 'pp512|tg128') (t=$SECONDS)"; pack; rm -rf $OUT/logs
