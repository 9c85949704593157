# Call 2 (eighteenth session): N = main 0e7e8ab (target/device.tar.xz: MoE experts
# routing themselves — VKGRAPH_MOE_ROUTE=0 turns it off — and decode attention planned
# for the current length: width and re-plans), B = main b8a345a (target/vkgraph-B.xz).
# The changed kernels under the Khronos validation layer first, then alternating A/B.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done
 $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1$3.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1$3.txt | tail -1) (t=$SECONDS)"); }
for o in mul_mat_id mul_mat_vecq_id moe_route attention; do
  (VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-test-ops-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(tail -2 $L/validated-test-ops-$o.txt | tr '\n' ' ' | cut -c1-200)")
done
vt vk_attention 60 ""
vt model_vulkan 150 tiny_models_match_cpu_on_forced
vt model_vulkan 60 attention_replans
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
run() { # label binary model args...
  local lb=$1 B=$2 m=$3; shift 3
  timeout 90 env ${E:-VKGRAPH_X=0} $B bench -m /tmp/$m.gguf "$@" --qkv auto >> $L/$lb-$m.txt 2>&1
  echo "$lb $m $*: $(tail -3 $L/$lb-$m.txt | t /dev/stdin 'pp|tg') (t=$SECONDS)"; }
for i in 1 2; do
  run B /tmp/vkgraph-B q30 -p 512 -n 128 -r 2
  run N $D/vkgraph q30 -p 512 -n 128 -r 2
  E=VKGRAPH_MOE_ROUTE=0 run N-noroute $D/vkgraph q30 -p 512 -n 128 -r 2
done; pack
for m in q06 l8; do for i in 1 2; do
  run B /tmp/vkgraph-B $m -p 512 -n 128 -r 3
  run N $D/vkgraph $m -p 512 -n 128 -r 3
done; done; pack
# A long generation from an empty cache: B keeps its first (unsplit) plan, N re-plans.
for b in B N; do B=$D/vkgraph; [ $b = B ] && B=/tmp/vkgraph-B
  run $b-long $B q06 -p 0 -n 2048 -r 1
done; pack
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A10 "per stage" $L/N-q30-profile.txt | head -12
pack; rm -rf $OUT/logs
