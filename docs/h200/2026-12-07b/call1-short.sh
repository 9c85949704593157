# Call 1, cut down (2026-12-07, thirteenth session; for the last device time): N = main
# 4e0cbfc (target/device.tar.xz); tg128 with the integer-dot fused mat-vec off / on / off
# (VKGRAPH_MMVQ_LAYER=0/1, one binary, one command), its op-suite cases on the GPU, and a
# profile of one llama-8b q4_0 step each way.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
$V test-ops -o mul_mat_vecq_layer > $L/N-test-ops-mul_mat_vecq_layer.txt 2>&1; echo "N test-ops -o mul_mat_vecq_layer rc=$? $(tail -1 $L/N-test-ops-mul_mat_vecq_layer.txt | cut -c1-110)"
wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
b() { VKGRAPH_MMVQ_LAYER=$2 timeout 60 $V bench -m /tmp/$3.gguf -p 0 -n 128 -r 3 --qkv auto > $L/$1-$3.txt 2>&1; }
for m in l8 l8k; do
  b N0 0 $m; b N1 1 $m; b N0b 0 $m; b N1b 1 $m
  echo "$m tg128 N0: $(t $L/N0-$m.txt tg128) N1: $(t $L/N1-$m.txt tg128) N0: $(t $L/N0b-$m.txt tg128) N1: $(t $L/N1b-$m.txt tg128)"; pack
done
VKGRAPH_MMVQ_LAYER=1 timeout 30 $V bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N1-profile-l8.txt 2>&1
VKGRAPH_MMVQ_LAYER=0 timeout 30 $V bench -m /tmp/l8.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/N0-profile-l8.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
