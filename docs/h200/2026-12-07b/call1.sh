# Call 1 (2026-12-07, thirteenth session): L = main 24bebcd (target/device.tar.xz),
# C4 = branch kquant-chunk4 rebased on it (vkgraph + benches/mat_vec, target/ab-C4.tar.xz).
# llama.cpp 0c1e570 CUDA's llama-bench builds in the background (.anchor/anchor-build.sh)
# while the 14 GPU test binaries run (scripts/device-run.sh tests, cut at t=330 s) and
# gen-model writes the files; then benches/mat_vec's K-quants, L then C4; then per file
# `vkgraph bench -p 512 -n 128 -r 3 --qkv auto` and llama-bench `-p 512 -n 128 -r 3
# -ngl 99 -fa 1` in this command.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1) &
TP=$!
while kill -0 $TP 2>/dev/null && [ $SECONDS -lt 330 ]; do sleep 2; done
kill -0 $TP 2>/dev/null && { echo "tests cut at t=$SECONDS"; pkill -P $TP; kill $TP; pkill -f '/tmp/dev/device/(vk_|model_vulkan|parity|kv_|layer_split|serve|lora|op_table)'; sleep 1; }
echo "t=$SECONDS tests:"; cat $L/tests-summary.txt | grep -E "rc=|result" | tr '\n' ' ' | cut -c1-1500; echo; pack
grep -E "FAILED|panicked" $L/tests.txt | head -8
mkdir -p /tmp/C4 && tar xJf target/ab-C4.tar.xz -C /tmp/C4; C4=/tmp/C4/ab-C4
export VKGRAPH_BENCH_TYPES=q2_K,q3_K,q4_K VKGRAPH_BENCH_SHAPES=4096x14336
for p in "L $D" "C4 $C4"; do set -- $p
  timeout 40 $2/mat_vec > $L/mat_vec-$1.txt 2>&1
  echo "$1 mat_vec int8 DRAM n=1 GB/s: $(grep -F ' int8 | DRAM ' $L/mat_vec-$1.txt | awk -F'|' '$5+0==1 {printf "%s@%s %s; ", $2, $4, $9}')"
done; unset VKGRAPH_BENCH_TYPES VKGRAPH_BENCH_SHAPES; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
LB=/tmp/ll/build/bin/llama-bench
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
for m in l8 q06 l8k; do
  [ $SECONDS -gt 520 ] && break
  timeout 60 $V bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/L-$m.txt 2>&1
  [ -x $LB ] && timeout 60 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m L: $(t $L/L-$m.txt 'pp512|tg128') llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128')"; pack
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
