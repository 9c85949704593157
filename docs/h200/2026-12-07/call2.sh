# Call 2 (2026-12-07, twelfth session): I = main 7a2c1bf (target/device-I.tar.xz) against
# K (target/device-K.tar.xz) = I + the mat-vec loads (ld128 / ld32 funnel shifts where a
# block starts 2 bytes off a word: q4_0, q5_0, q8_0, q3_K, q6_K; q4_K / q5_K / q6_K
# integer-dot units as 16-byte code chunks) + the integer-dot fused mat-vec
# (mul_mat_vecq_layer: the decode-layer folds on the int8 path; VKGRAPH_MMVQ_LAYER=0 off).
# 1. K's GPU tests of the changed kernels and test-ops of both integer-dot kernels.
# 2. benches/mat_vec, K / I / K (int8 + float, L2 + DRAM, n = 1 and 8).
# 3. tg128, one command: llama-8b q4_0, llama-8b q4_k_m, qwen3-0.6b q4_k_m, each I / K0 / K1
#    (K0 = VKGRAPH_MMVQ_LAYER=0); l8 K0 / K1 at VKGRAPH_MMVQ_SHAPE=128x8; K1's profile of
#    one l8 step.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
mkdir -p /tmp/I /tmp/K && tar xJf target/device-I.tar.xz -C /tmp/I && tar xJf target/device-K.tar.xz -C /tmp/K
I=/tmp/I/device; K=/tmp/K/device-K; man=$(cat $K/MANIFEST_DIR); tgt=$(cat $K/TARGET_DIR)
mkdir -p "$(dirname "$man")" "$tgt"; [ -e "$man" ] || ln -s "$PWD" "$man"; cp $K/vkgraph "$tgt/vkgraph"
$K/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $K/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $K/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_k_m -o /tmp/q06k.gguf
  $K/vkgraph gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_mul_mat vk_ops op_table model_vulkan; do
  (cd "$man" && timeout 120 $K/$t --test-threads 1 > "$L/K-$t.txt" 2>&1; echo "K $t rc=$? $(res $L/K-$t.txt)")
done
for o in mul_mat_vecq mul_mat_vecq_layer; do
  $K/vkgraph test-ops -o $o > $L/K-test-ops-$o.txt 2>&1; echo "K test-ops -o $o rc=$? $(tail -1 $L/K-test-ops-$o.txt | cut -c1-110)"
done; pack
export VKGRAPH_BENCH_TYPES=q4_0,q8_0,q5_0,q4_K,q5_K,q6_K,q3_K VKGRAPH_BENCH_SHAPES=4096x14336,4096x4096
for p in "K $K" "I $I" "K2 $K"; do set -- $p
  timeout 60 $2/mat_vec > $L/mat_vec-$1.txt 2>&1
  echo "$1 mat_vec int8 DRAM n=1 GB/s: $(grep -F ' int8 | DRAM ' $L/mat_vec-$1.txt | awk -F'|' '$5+0==1 {printf "%s@%s %s; ", $2, $4, $9}')"
done; pack
unset VKGRAPH_BENCH_TYPES VKGRAPH_BENCH_SHAPES
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
tg() { grep -E "tg128" $1 | awk -F'|' '{printf "%s ", $(NF-1)}'; }
b() { # label binary layer model
  VKGRAPH_MMVQ_LAYER=$3 timeout 60 $2/vkgraph bench -m /tmp/$4.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$1-$4.txt 2>&1; }
for m in l8 l8k q06k; do
  [ $SECONDS -gt 480 ] && break
  b I $I 1 $m; b K0 $K 0 $m; b K1 $K 1 $m
  echo "$m tg128 I: $(tg $L/I-$m.txt) K0: $(tg $L/K0-$m.txt) K1: $(tg $L/K1-$m.txt)"; pack
done
# The integer-dot launch shape at 8 rows (halves the fused kernel's x reads per row).
if [ $SECONDS -lt 500 ]; then
  export VKGRAPH_MMVQ_SHAPE=128x8; b K0s $K 0 l8; b K1s $K 1 l8; unset VKGRAPH_MMVQ_SHAPE
  echo "l8 tg128 at 128x8 K0: $(tg $L/K0s-l8.txt) K1: $(tg $L/K1s-l8.txt)"; pack
fi
[ $SECONDS -lt 540 ] && timeout 40 $K/vkgraph bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/K1-profile-l8.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
