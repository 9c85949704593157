# Call 2 (2026-12-07, thirteenth session): N = main 4e0cbfc (target/device-N.tar.xz): the
# integer-dot fused mat-vec reading q8_1 that its producer's epilogue wrote once
# (VKGRAPH_MMVQ_LAYER=1; N0 = the same binary with it off, main's default).
# 1. N's GPU tests of the changed kernels (vk_mul_mat, op_table, model_vulkan) and
#    test-ops of the integer-dot kernels.
# 2. tg128, one command: llama-8b q4_0, llama-8b q4_k_m, qwen3-0.6b q4_0, each N0 / N1 / N0
#    (the repeat shows the drift); N1's profile of one llama-8b q4_0 step.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
mkdir -p /tmp/N && tar xJf target/device-N.tar.xz -C /tmp/N
N=/tmp/N/device-N; man=$(cat $N/MANIFEST_DIR); tgt=$(cat $N/TARGET_DIR)
mkdir -p "$(dirname "$man")" "$tgt"; [ -e "$man" ] || ln -s "$PWD" "$man"; cp $N/vkgraph "$tgt/vkgraph"
$N/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $N/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $N/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $N/vkgraph gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_mul_mat op_table model_vulkan; do
  (cd "$man" && timeout 150 $N/$t --test-threads 1 > "$L/N-$t.txt" 2>&1; echo "N $t rc=$? $(res $L/N-$t.txt)")
done
for o in mul_mat_vecq mul_mat_vecq_layer; do
  $N/vkgraph test-ops -o $o > $L/N-test-ops-$o.txt 2>&1; echo "N test-ops -o $o rc=$? $(tail -1 $L/N-test-ops-$o.txt | cut -c1-110)"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
tg() { grep -E "tg128" $1 | awk -F'|' '{printf "%s ", $(NF-1)}'; }
b() { # label layer model
  VKGRAPH_MMVQ_LAYER=$2 timeout 60 $N/vkgraph bench -m /tmp/$3.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$1-$3.txt 2>&1; }
for m in l8 l8k q06; do
  [ $SECONDS -gt 500 ] && break
  b N0 0 $m; b N1 1 $m; b N0b 0 $m
  echo "$m tg128 N0: $(tg $L/N0-$m.txt) N1: $(tg $L/N1-$m.txt) N0 again: $(tg $L/N0b-$m.txt)"; pack
done
[ $SECONDS -lt 540 ] && VKGRAPH_MMVQ_LAYER=1 timeout 40 $N/vkgraph bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N1-profile-l8.txt 2>&1
[ $SECONDS -lt 560 ] && VKGRAPH_MMVQ_LAYER=0 timeout 30 $N/vkgraph bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N0-profile-l8.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
