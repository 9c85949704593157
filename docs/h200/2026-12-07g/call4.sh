# Call 4 (eighteenth session): N = main (target/device.tar.xz: the experts' pick from
# registers), B = main b8a345a (target/vkgraph-B.xz). The changed kernels under the
# validation layer, then the routing A/B on a quiet machine (no llama.cpp build beside:
# call 3's q30 runs overlapped it), alternating N / N with VKGRAPH_MOE_ROUTE=0 / B.
# (Cut to fit the device time left: test-ops only under the layer, two rounds.)
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
$D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
for o in mul_mat_id mul_mat_vecq_id; do
  (VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-test-ops-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(tail -2 $L/validated-test-ops-$o.txt | tr '\n' ' ' | cut -c1-200)")
done
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
run() { local lb=$1 B=$2; shift 2
  timeout 90 env ${E:-VKGRAPH_X=0} $B bench -m /tmp/q30.gguf "$@" --qkv auto >> $L/$lb-q30.txt 2>&1
  echo "$lb q30 $*: $(tail -4 $L/$lb-q30.txt | t /dev/stdin 'pp|tg') (t=$SECONDS)"; }
for i in 1 2; do
  run N $D/vkgraph -p 512 -n 128 -r 2
  E=VKGRAPH_MOE_ROUTE=0 run N-noroute $D/vkgraph -p 512 -n 128 -r 2
  run B /tmp/vkgraph-B -p 512 -n 128 -r 2
done; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A10 "per stage" $L/N-q30-profile.txt | head -12; grep -B1 -A3 "per node (a barrier" $L/N-q30-profile.txt | sed -n 1,6p
pack; rm -rf $OUT/logs
