# Call 6 (fifteenth session, closing run): F = main e93e85e (shaderc 0.10, gpu-allocator
# 0.28 / petgraph 0.8 / criterion 0.8, the one-pass coopmat prompt attention with the
# K/V prefetch; target/device.tar.xz). llama.cpp 0c1e570 CUDA's llama-bench builds in
# the background. Every GPU test binary (scripts/device-run.sh tests); test-ops of the
# coopmat kernels under the Khronos validation layer (.vvl; spirv-val of the shaderc 0.10
# SPIR-V, synchronization validation); then per file `vkgraph bench -p 512 -n 128 -r 3
# --qkv auto` and `llama-bench -p 512 -n 128 -r 3 -ngl 99 -fa 1`, and pp4096 on
# llama-8b, in this one command; the mat_vec DRAM table if time is left.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
mkdir -p /tmp/dev && tar xJf target/device.tar.xz -C /tmp/dev
( $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf
  $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
bash scripts/device-run.sh tests 2>&1 | tail -20; cp $L/tests.txt $L/tests-F.txt 2>/dev/null; pack
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for m in l8 q06 l8k q30; do
  r=3; [ $m = q30 ] && r=2
  timeout 90 $D/vkgraph bench -m /tmp/$m.gguf -p 512 -n 128 -r $r --qkv auto > $L/C-$m.txt 2>&1
  echo "$m vkgraph: $(t $L/C-$m.txt 'pp512|tg128') (t=$SECONDS)"
done
timeout 40 $D/vkgraph bench -m /tmp/l8.gguf -p 4096 -n 0 -r 2 --qkv auto > $L/C-l8-pp4096.txt 2>&1
echo "l8 pp4096 vkgraph: $(t $L/C-l8-pp4096.txt pp4096)"; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in l8 q06 l8k q30; do
  r=3; [ $m = q30 ] && r=2
  [ -x $LB ] && timeout 90 $LB -m /tmp/$m.gguf -p 512 -n 128 -r $r -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
[ -x $LB ] && timeout 40 $LB -m /tmp/l8.gguf -p 4096 -n 0 -r 2 -ngl 99 -fa 1 > $L/llama-l8-pp4096.txt 2>&1
echo "l8 pp4096 llama.cpp CUDA: $(t $L/llama-l8-pp4096.txt pp4096) (t=$SECONDS)"; pack
if [ $SECONDS -lt 450 ]; then
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
for o in attention mul_mat mul_mat_id; do
  VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-$o.txt 2>&1
  echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/validated-$o.txt | tail -2 | tr '\n' ' ' | cut -c1-160)"
done; pack
fi
if [ $SECONDS -lt 480 ]; then

  timeout 90 $D/mat_vec > $L/mat_vec.md 2>&1; grep -c DRAM $L/mat_vec.md; echo "t=$SECONDS"
fi
pack; rm -rf $OUT/logs
