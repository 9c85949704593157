# Call 2 (2026-12-06, tenth session), the closing run. G = main 1f6131e (the 64 x 256 tile
# restored; MOE_SUM_ADD_RMS_NORM_MUL and MOE_ROUTER_TOPK with their kernels reworked after
# call 1) in target/device.tar.xz; from target/ab.tar.xz D (the ninth session's closing
# build). llama.cpp
# 0c1e570 CUDA's llama-bench builds in the background while all 13 GPU test binaries run
# (scripts/device-run.sh tests); then the changed MoE ops under the validation layer; then
# on the same files in this command: qwen3-30b-a3b q4_0 G (pp512 + tg128), D (tg128), G
# (tg128) again, llama-bench; llama-8b and qwen3-0.6b q4_0 G and llama-bench; then as
# time allows G's per-stage decode profile of the 30B.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS tests"; bash scripts/device-run.sh tests | grep "rc=" | tr '\n' ' '; echo; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
for o in moe_router_topk moe_sum_add_rms_norm_mul; do
  (cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o $o > $L/val-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/val-$o.txt | tr '\n' ' ' | cut -c1-150)")
done; pack
echo "t=$SECONDS wait gen"; wait $GP; tail -3 $L/gen.txt
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
LB=/tmp/ll/build/bin/llama-bench
timeout 90 $V bench -m /tmp/q30.gguf -p 512 -n 128 -r 3 --qkv auto > $L/G-q30.txt 2>&1
timeout 60 $AB/vkgraph-d bench -m /tmp/q30.gguf -p 0 -n 128 -r 3 --qkv auto > $L/D-q30.txt 2>&1
timeout 60 $V bench -m /tmp/q30.gguf -p 0 -n 128 -r 3 --qkv auto > $L/G2-q30.txt 2>&1
echo "q30 G: $(t $L/G-q30.txt 'pp512|tg128') D tg128: $(t $L/D-q30.txt tg128) G tg128: $(t $L/G2-q30.txt tg128)"; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
[ -x $LB ] && timeout 90 $LB -m /tmp/q30.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-q30.txt 2>&1
echo "q30 llama.cpp CUDA: $(t $L/llama-q30.txt 'pp512|tg128')"; pack
for m in l8 q06; do
  [ $SECONDS -gt 520 ] && break
  timeout 80 $V bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/G-$m.txt 2>&1
  [ -x $LB ] && timeout 80 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m G: $(t $L/G-$m.txt 'pp512|tg128') llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128')"; pack
done
[ $SECONDS -lt 555 ] && timeout 35 $V bench -m /tmp/q30.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/G-profile-q30.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
