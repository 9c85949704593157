# Call 1 (2026-12-06, tenth session). Builds: F = main cda9beb (MOE_SUM_ADD_RMS_NORM_MUL and
# MOE_ROUTER_TOPK: two stages fewer per qwen3moe decode layer), in target/device.tar.xz;
# E = F + the 64 x 256 dense coopmat tile (branch coopmat-64x256's commit 57351ee, i.e. a
# revert of 4d4f68d) and D = the ninth session's closing build 999365b, both in
# target/ab.tar.xz (vkgraph-e, prefill-e, vk_mul_mat-e, model_vulkan-e; vkgraph-d,
# prefill-d). llama.cpp 0c1e570 CUDA's llama-bench builds in the background
# (.anchor/anchor-build.sh). Order: F's changed-kernel tests (vk_ops, model_vulkan, the new
# ops under the validation layer), E's coopmat tests, the prefill kernel bench F vs E, then
# on the same files: qwen3-30b-a3b q4_0 F (pp512 + tg128), D (tg128), E (pp512); llama-8b
# q4_0 F, E (pp512); qwen3-0.6b q4_0 F; then llama-bench on the three.
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
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_ops model_vulkan; do
  (cd $man && timeout 150 $D/$t --test-threads 1 > $L/F-$t.txt 2>&1; echo "F $t rc=$? $(res $L/F-$t.txt)")
done
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
for o in moe_router_topk moe_sum_add_rms_norm_mul moe_route moe_sum_add; do
  (cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o $o > $L/val-$o.txt 2>&1; echo "F test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/val-$o.txt | tr '\n' ' ' | cut -c1-150)")
done; pack
(cd $man && timeout 120 $AB/vk_mul_mat-e --test-threads 1 mul_mat_coopmat > $L/E-vk_mul_mat.txt 2>&1; echo "E vk_mul_mat mul_mat_coopmat rc=$? $(res $L/E-vk_mul_mat.txt)")
(cd $man && timeout 120 $AB/model_vulkan-e --test-threads 1 prompt_matmuls moe_prompt_then > $L/E-model_vulkan.txt 2>&1; echo "E model_vulkan rc=$? $(res $L/E-model_vulkan.txt)")
pack
for b in F E; do
  if [ $b = F ]; then P=$D/prefill; else P=$AB/prefill-e; fi
  VKGRAPH_BENCH_TYPES=q4_0,q4_K timeout 60 $P > $L/prefill-$b.txt 2>&1
  echo "prefill $b: $(grep coopmat $L/prefill-$b.txt | grep '^|' | awk -F'|' '{printf "%s %s %s %s: %s TF; ", $2, $3, $4, $6, $8}')"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; tail -3 $L/gen.txt
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
timeout 90 $V bench -m /tmp/q30.gguf -p 512 -n 128 -r 3 --qkv auto > $L/F-q30.txt 2>&1
timeout 60 $AB/vkgraph-d bench -m /tmp/q30.gguf -p 0 -n 128 -r 3 --qkv auto > $L/D-q30.txt 2>&1
timeout 60 $AB/vkgraph-e bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/E-q30.txt 2>&1
echo "q30 F: $(t $L/F-q30.txt 'pp512|tg128') D tg128: $(t $L/D-q30.txt tg128) E pp512: $(t $L/E-q30.txt pp512)"; pack
timeout 90 $V bench -m /tmp/l8.gguf -p 512 -n 128 -r 3 --qkv auto > $L/F-l8.txt 2>&1
timeout 60 $AB/vkgraph-e bench -m /tmp/l8.gguf -p 512 -n 0 -r 3 --qkv auto > $L/E-l8.txt 2>&1
echo "l8 F: $(t $L/F-l8.txt 'pp512|tg128') E pp512: $(t $L/E-l8.txt pp512)"; pack
timeout 60 $V bench -m /tmp/q06.gguf -p 512 -n 128 -r 3 --qkv auto > $L/F-q06.txt 2>&1
echo "q06 F: $(t $L/F-q06.txt 'pp512|tg128')"; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in q30 l8 q06; do
  [ $SECONDS -gt 540 ] && break
  [ -x $LB ] && timeout 90 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128')"; pack
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
