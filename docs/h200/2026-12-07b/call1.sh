# Call 1 (2026-12-07, thirteenth session; calls 1 and 2 merged to save device time):
# N = main 4e0cbfc (target/device.tar.xz): main 24bebcd plus the integer-dot fused
# mat-vec reading q8_1 its producer's epilogue wrote once (VKGRAPH_MMVQ_LAYER=1;
# N0 = the same binary with it off, main's default, N1 = on).
# llama.cpp 0c1e570 CUDA's llama-bench builds in the background (.anchor/anchor-build.sh)
# while gen-model writes the files and N's GPU tests of the changed kernels run
# (vk_mul_mat, op_table, model_vulkan, vk_attention, test-ops of the integer-dot kernels);
# then per file tg128 N0 / N1 / N0 (`vkgraph bench -p 0 -n 128 -r 3 --qkv auto`), N's
# pp512 + tg128 default and llama-bench `-p 512 -n 128 -r 3 -ngl 99 -fa 1`, one command;
# N1's profile of one llama-8b q4_0 step; the K-quant mat-vec of N against C4 (branch
# kquant-chunk4 rebased on 24bebcd, target/ab-C4.tar.xz) as time allows.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; V=$D/vkgraph; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_mul_mat op_table model_vulkan vk_attention; do
  [ $SECONDS -gt 280 ] && { echo "skipped $t (t=$SECONDS)"; continue; }
  (cd "$man" && timeout 150 $D/$t --test-threads 1 > "$L/N-$t.txt" 2>&1; echo "N $t rc=$? $(res $L/N-$t.txt)")
done
for o in mul_mat_vecq mul_mat_vecq_layer; do
  $V test-ops -o $o > $L/N-test-ops-$o.txt 2>&1; echo "N test-ops -o $o rc=$? $(tail -1 $L/N-test-ops-$o.txt | cut -c1-110)"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
b() { # label layer model
  VKGRAPH_MMVQ_LAYER=$2 timeout 60 $V bench -m /tmp/$3.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$1-$3.txt 2>&1; }
LB=/tmp/ll/build/bin/llama-bench
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
for m in l8 q06 l8k; do
  [ $SECONDS -gt 470 ] && break
  b N0 0 $m; b N1 1 $m; b N0b 0 $m
  timeout 60 $V bench -m /tmp/$m.gguf -p 512 -n 0 -r 3 --qkv auto > $L/Npp-$m.txt 2>&1
  [ -x $LB ] && timeout 60 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m tg128 N0: $(t $L/N0-$m.txt tg128) N1: $(t $L/N1-$m.txt tg128) N0 again: $(t $L/N0b-$m.txt tg128) pp512 N: $(t $L/Npp-$m.txt pp512) | llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128')"; pack
done
[ $SECONDS -lt 520 ] && VKGRAPH_MMVQ_LAYER=1 timeout 30 $V bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N1-profile-l8.txt 2>&1
[ $SECONDS -lt 540 ] && VKGRAPH_MMVQ_LAYER=0 timeout 25 $V bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N0-profile-l8.txt 2>&1
if [ $SECONDS -lt 550 ]; then
  mkdir -p /tmp/C4 && tar xJf target/ab-C4.tar.xz -C /tmp/C4; C4=/tmp/C4/ab-C4
  export VKGRAPH_BENCH_TYPES=q2_K,q3_K VKGRAPH_BENCH_SHAPES=4096x14336
  for p in "N $D" "C4 $C4"; do set -- $p
    timeout 20 $2/mat_vec > $L/mat_vec-$1.txt 2>&1
    echo "$1 mat_vec int8 DRAM n=1 GB/s: $(grep -F ' int8 | DRAM ' $L/mat_vec-$1.txt | awk -F'|' '$5+0==1 {printf "%s@%s %s; ", $2, $4, $9}')"
  done
fi
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
