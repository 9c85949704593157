# Call 1 (twentieth session): the nineteenth session's unmeasured work on a GPU, beside
# llama.cpp CUDA built in the same command (niced, while the validated tests and the
# profiles run; the A/B timings start after it finished).
# N = main (target/device.tar.xz: split count rounded up; bench -d N --profile;
# VKGRAPH_ATTN_VPRE; copy_vec4; benches/attention), B = main b8a345a (target/vkgraph-B.xz).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(nice -n 15 bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1 &
GP=$!
SMI=$(command -v nvidia-smi || ls /usr/local/nvidia/bin/nvidia-smi 2>/dev/null)
[ -n "$SMI" ] && ($SMI --query-gpu=timestamp,pstate,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.draw,utilization.gpu,utilization.memory --format=csv -lms 500 > $L/smi.csv 2>&1 &) || echo "no nvidia-smi"
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1$3.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1$3.txt | tail -1) (t=$SECONDS)"); }
vt vk_attention 150 ""
vt vk_runtime 60 copy
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
prof() {
  timeout 100 $D/vkgraph bench -m /tmp/$1.gguf -p 0 -n 16 -d $2 -r 1 --qkv auto --profile > $L/N-$1-profile.txt 2>&1
  grep -E "^### |GPU per|ATTENTION" $L/N-$1-profile.txt | cut -c1-140; pack
}
prof q06 0,512,4096
prof l8 0,4096
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
ab() { # model, variants
  for b in $2; do
    B=$D/vkgraph; [ $b = B ] && B=/tmp/vkgraph-B; E=VKGRAPH_X=0; [ $b = Nvpre ] && E=VKGRAPH_ATTN_VPRE=1
    env $E timeout 100 $B bench -m /tmp/$1.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 --qkv auto > $L/$b-$1.txt 2>&1
    echo "$b $1: $(t $L/$b-$1.txt tg64) (t=$SECONDS)"
  done; pack
}
ab l8 "B N Nvpre"
ab q06 "B N Nvpre"
LB=/tmp/ll/build/bin/llama-bench
for m in q06 l8; do
  [ -x $LB ] && timeout 100 $LB -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 -ngl 99 -fa 1 > $L/llama-$m-depth.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m-depth.txt 'tg64') (t=$SECONDS)"; pack
done
[ $SECONDS -lt 480 ] && { timeout $((570 - SECONDS)) $D/attention > $L/attention.md 2>&1; grep -iE "dram|copy" $L/attention.md | head -30; }
pkill -f "query-gpu"
pack; rm -rf $OUT/logs
