# Call 3: H (main) beside llama.cpp 0c1e570 CUDA's llama-bench, same command (ANCHOR-KIT:
# llama-bench built here first, ~290 s): pp512 / tg128 on the four files of call 2.
# Carry: ["target/device.tar.xz",".gl",".anchor"]
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
wait $AP; tail -1 $L/anchor.txt; echo "t=$SECONDS"
(for m in "qwen3moe qwen3-30b-a3b q4_0 q30" "llama llama-8b q4_0 l8" "llama llama-8b q4_k_m l8km" "qwen3 qwen3-0.6b q4_0 q06"; do set -- $m
  [ -f /tmp/$4.gguf ] || $D/vkgraph gen-model --arch $1 --preset $2 --quant $3 -o /tmp/$4.gguf; done) > $L/gen.txt 2>&1
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
LB=/tmp/ll/build/bin/llama-bench
for m in q30 l8 l8km q06; do
  timeout 90 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128') (t=$SECONDS)"
  timeout 90 $D/vkgraph bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/bench-H-$m.txt 2>&1
  echo "H $m: $(t $L/bench-H-$m.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
