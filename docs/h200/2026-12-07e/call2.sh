# Call 2 (sixteenth session): N = main 7adbf83 (call 1's MUL_MAT_ID_SWIGLU, plus: the next
# layer's norm kept beside the expert sum on the integer-dot path, and the router taking
# the ffn norm into its prologue — 7 stages per MoE decode layer; target/device.tar.xz),
# M = main a5972ef (target/vkgraph-M.xz). llama.cpp 0c1e570 CUDA's llama-bench builds in
# the background. The changed kernels under the Khronos validation layer (test-ops), the
# GPU test binaries that run them; qwen3-30b-a3b q4_0 and q2_k (gen-model): M / N
# alternating, N's decode profile, the router's kernel times (test-ops --perf), N's expert
# mat-vec shapes, llama.cpp CUDA on both files.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf
  $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q2_k -o /tmp/q30k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
for o in moe_router_topk mul_mat_id mul_mat_vecq_id; do
  VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 90 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-$o.txt 2>&1
  echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/validated-$o.txt | tail -2 | tr '\n' ' ' | cut -c1-170)"
done
man=$(cat $D/MANIFEST_DIR)
for t in model_vulkan vk_ops; do
  (cd $man && timeout 150 $D/$t --test-threads 1 > $L/test-$t.txt 2>&1; echo "$t rc=$? $(grep -E '^test result' $L/test-$t.txt | tail -1)")
done; pack
$D/vkgraph test-ops --perf -o moe_router_topk > $L/perf-router.txt 2>&1; grep -E "2048" $L/perf-router.txt | cut -c1-160
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M N M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30.txt 2>&1
  echo "$b q30: $(t $L/$b-q30.txt 'pp512|tg128') (t=$SECONDS)"; cat $L/$b-q30.txt >> $L/$b-q30-all.txt
done; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 0 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A12 "per stage" $L/N-q30-profile.txt | head -14; pack
for b in M N; do
  B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/q30k.gguf -p 512 -n 128 -r 2 --qkv auto > $L/$b-q30k.txt 2>&1
  echo "$b q30 q2_k: $(t $L/$b-q30k.txt 'pp512|tg128') (t=$SECONDS)"
done; pack
for s in 32x2 32x4 16x4; do
  VKGRAPH_MMVQ_ID_SHAPE=$s timeout 40 $D/vkgraph bench -m /tmp/q30.gguf -p 0 -n 128 -r 2 --qkv auto > $L/N-q30-id$s.txt 2>&1
  echo "N q30 id shape $s: $(t $L/N-q30-id$s.txt tg128) (t=$SECONDS)"
done; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in q30 q30k; do
  [ -x $LB ] && timeout 90 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 2 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
pack; rm -rf $OUT/logs
