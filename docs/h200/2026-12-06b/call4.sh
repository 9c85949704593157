# Call 4 (2026-12-06, ninth session), the closing run on one warm machine: llama.cpp
# 0c1e570 CUDA's llama-bench built in the background (.anchor/anchor-build.sh) while the
# GPU test binaries run; the changed ops under the validation layer (test-ops --validate);
# then `vkgraph bench` and `llama-bench` on the same files in this one command; then, as
# time allows, the integer-dot mat-vec launch-shape sweep and a pp512 per-node profile.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "driver|api" $L/devices.txt | head -2
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf ) > $L/gen.txt 2>&1 &
GP=$!
echo "t=$SECONDS tests"; bash scripts/device-run.sh tests | grep "rc=" | tr '\n' ' '; echo; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
for o in mul_mat_vecq_id mul_mat_id moe_sum_add mul_mat_vecq; do
  (cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o $o > $L/val-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(grep -E 'passed|validated' $L/val-$o.txt | tr '\n' ' ' | cut -c1-150)")
done; pack
echo "t=$SECONDS wait gen, anchor"; wait $GP; tail -3 $L/gen.txt; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in l8 q30 q06; do
  timeout 90 $V bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/bench-$m.txt 2>&1
  [ -x $LB ] && timeout 120 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m vkgraph: $(grep -E 'pp512|tg128' $L/bench-$m.txt | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}') llama.cpp CUDA: $(grep -E 'pp512|tg128' $L/llama-$m.txt | awk -F'|' '{printf "%s ", $(NF-1)}')"
  pack
done
echo "t=$SECONDS"
for s in 32x8 64x8 32x16; do
  [ $SECONDS -gt 500 ] && break
  VKGRAPH_MMVQ_SHAPE=$s timeout 40 $V bench -m /tmp/q30.gguf -p 0 -n 64 -r 2 --qkv auto > $L/q30-mmvq-$s.txt 2>&1
  echo "q30 mmvq $s: $(grep -E '\| tg64' $L/q30-mmvq-$s.txt | head -1 | awk -F'|' '{print $(NF-1)}')"
done
[ $SECONDS -lt 540 ] && timeout 50 $V bench -m /tmp/l8.gguf -p 512 -n 0 -r 1 --qkv auto --profile > $L/pp-profile-l8.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
