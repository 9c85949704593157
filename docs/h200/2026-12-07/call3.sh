# Call 3 (2026-12-07, twelfth session), the closing run: L = main after call 2 (the
# mat-vec loads; q5_K / q6_K code chunks, q4_K back on 32-value units; the integer-dot
# fused mat-vec opt-in) in target/device.tar.xz, I = main 7a2c1bf (vkgraph and
# benches/mat_vec only, target/ab-I.tar.xz).
# llama.cpp 0c1e570 CUDA's llama-bench builds in the background while all 14 GPU test
# binaries run (scripts/device-run.sh tests), then op_table and the two integer-dot kernels
# under the validation layer; benches/mat_vec of the K-quants, L then I; then per file
# `vkgraph bench -p 512 -n 128 -r 3` and llama-bench's `-p 512 -n 128 -r 3 -ngl 99 -fa 1`
# in this command: llama-8b q4_0 and q4_k_m (and I's tg128 there), qwen3-0.6b q4_0.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS tests"; bash scripts/device-run.sh tests | grep "rc=" | tr '\n' ' '; echo; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/op_table --test-threads 1 > $L/val-op_table.txt 2>&1; echo "op_table (validated) rc=$? $(grep 'test result' $L/val-op_table.txt | cut -c1-60)")
for o in mul_mat_vecq mul_mat_vecq_layer; do
  (cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o $o > $L/val-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/val-$o.txt | tr '\n' ' ' | cut -c1-150)")
done; pack
mkdir -p /tmp/I && tar xJf target/ab-I.tar.xz -C /tmp/I; I=/tmp/I/ab-I
export VKGRAPH_BENCH_TYPES=q4_K,q5_K,q6_K VKGRAPH_BENCH_SHAPES=4096x14336
for p in "L $D" "I $I"; do set -- $p
  timeout 40 $2/mat_vec > $L/mat_vec-$1.txt 2>&1
  echo "$1 mat_vec int8 DRAM n=1 GB/s: $(grep -F ' int8 | DRAM ' $L/mat_vec-$1.txt | awk -F'|' '$5+0==1 {printf "%s@%s %s; ", $2, $4, $9}')"
done; unset VKGRAPH_BENCH_TYPES VKGRAPH_BENCH_SHAPES; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
LB=/tmp/ll/build/bin/llama-bench
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
for m in l8 l8k q06; do
  [ $SECONDS -gt 500 ] && break
  timeout 80 $V bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/L-$m.txt 2>&1
  [ -x $LB ] && timeout 80 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  [ $m = l8k ] && timeout 40 $I/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto > $L/I-$m.txt 2>&1
  echo "$m L: $(t $L/L-$m.txt 'pp512|tg128') llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128') $([ $m = l8k ] && echo "I tg128: $(t $L/I-$m.txt tg128)")"; pack
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
