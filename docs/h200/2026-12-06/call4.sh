# Call 4 (2026-12-06; device time was short, so no llama.cpp build here): (1) the
# model_vulkan tests of the MoE scratch fix and the MoE prompt path; (2) where the coopmat
# prompt kernel's time goes: the prefill bench (q4_0, q4_K) built four ways — as is, and
# with the W loads, the x loads or both replaced by values computed in registers
# (probe.patch; not on main); (3) the expert-indexed decode mat-vec's launch shape
# (VKGRAPH_MMV_SHAPE) on qwen3-30b-a3b q4_0, per-op profile, and grouping on/off.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "driver|api" $L/devices.txt | head -3
$V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30-q4_0.gguf > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 100 $D/model_vulkan --test-threads 1 moe_prompt_then prompt_matmuls > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan (moe_prompt_then, prompt_matmuls) rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-50)")
mkdir -p /tmp/probe && tar xJf target/probe.tar.xz -C /tmp/probe
for b in base NO_W NO_X NO_WX; do
  VKGRAPH_BENCH_TYPES=q4_0,q4_K timeout 40 /tmp/probe/prefill-$b > $L/probe-$b.txt 2>&1
  echo "$b: $(grep coopmat $L/probe-$b.txt | awk -F'|' '{printf "%s %s %s: %s us %s TF; ", $2, $3, $4, $7, $8}')"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; tail -1 $L/gen.txt
for s in default 32x2 64x4 128x4 256x2; do
  if [ $s = default ]; then unset VKGRAPH_MMV_SHAPE; else export VKGRAPH_MMV_SHAPE=$s; fi
  timeout 40 $V bench -m /tmp/q30-q4_0.gguf -p 0 -n 64 -r 2 --qkv auto --profile > $L/mmv-$s.txt 2>&1
  echo "$s: $(grep -E '\| tg64' $L/mmv-$s.txt | head -1 | awk -F'|' '{print $(NF-1)}') | $(grep -E 'MUL_MAT_ID' $L/mmv-$s.txt | tail -2 | awk -F'|' '{printf "%s %s us; ", $2, $5}')"
done
unset VKGRAPH_MMV_SHAPE; pack
timeout 40 $V bench -m /tmp/q30-q4_0.gguf -p 512 -n 0 -r 3 --qkv auto > $L/bench.txt 2>&1; grep pp512 $L/bench.txt | grep -v speedup
VKGRAPH_MOE_GROUP=0 timeout 30 $V bench -m /tmp/q30-q4_0.gguf -p 512 -n 0 -r 2 --qkv auto > $L/bench-nogroup.txt 2>&1; grep pp512 $L/bench-nogroup.txt | grep -v speedup
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
