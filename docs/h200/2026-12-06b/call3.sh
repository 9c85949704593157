# Call 3 (2026-12-06, ninth session): where the time goes now. (1) the prefill kernel
# bench with x read as f32 and as f16 (conversion included); (2) the integer-dot
# mat-vec's launch shape (VKGRAPH_MMVQ_SHAPE) on qwen3-30b-a3b q4_0 and llama-8b q4_0 decode,
# with the per-stage profile; (3) per-node profiles of one pp512 batch on both.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
VKGRAPH_BENCH_TYPES=q4_0,q4_K timeout 90 $D/prefill > $L/prefill.txt 2>&1
grep coopmat $L/prefill.txt | grep '^|' | awk -F'|' '{printf "%s %s %s %s: %s TF\n", $2, $3, $4, $6, $8}'
pack; echo "t=$SECONDS wait gen"; wait $GP; tail -2 $L/gen.txt
for s in default 32x8 64x8 32x16 64x4 128x8; do
  if [ $s = default ]; then unset VKGRAPH_MMVQ_SHAPE; else export VKGRAPH_MMVQ_SHAPE=$s; fi
  timeout 60 $V bench -m /tmp/q30.gguf -p 0 -n 64 -r 2 --qkv auto --profile > $L/q30-mmvq-$s.txt 2>&1
  echo "q30 $s: $(grep -E '\| tg64' $L/q30-mmvq-$s.txt | head -1 | awk -F'|' '{print $(NF-1)}') | $(grep -E 'MUL_MAT_ID|MUL_MAT q4_0|MUL_MAT_FUSED q4_0' $L/q30-mmvq-$s.txt | tail -4 | awk -F'|' '{printf "%s %s us; ", $2, $5}')"
done
for s in default 64x4 128x8 32x8; do
  if [ $s = default ]; then unset VKGRAPH_MMVQ_SHAPE; else export VKGRAPH_MMVQ_SHAPE=$s; fi
  timeout 60 $V bench -m /tmp/l8.gguf -p 0 -n 64 -r 2 --qkv auto > $L/l8-mmvq-$s.txt 2>&1
  echo "l8 $s: $(grep -E '\| tg64' $L/l8-mmvq-$s.txt | head -1 | awk -F'|' '{print $(NF-1)}')"
done
unset VKGRAPH_MMVQ_SHAPE; pack
for m in l8 q30; do
  timeout 90 $V bench -m /tmp/$m.gguf -p 512 -n 0 -r 2 --qkv auto --profile > $L/pp-profile-$m.txt 2>&1
  echo "$m: $(grep -E '\| pp512' $L/pp-profile-$m.txt | head -1 | awk -F'|' '{print $(NF-1)}')"; grep -A14 "### .* pp512" $L/pp-profile-$m.txt | grep '^|' | head -12 | cut -c1-110
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
