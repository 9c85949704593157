# Call 1 (2026-12-06, eleventh session; was the tenth session's call3.sh, never run): H = main 22c9f26
# (moe_router ranks the experts in one pass instead of k subgroup passes) in
# target/device.tar.xz, G = call 2's build (vkgraph-g in target/ab.tar.xz). H's tests of
# the changed kernel (vk_ops incl. moe_router_topk_ids_exact, model_vulkan), the op under
# the validation layer, then test-ops --perf of the routing ops, G then H then G.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for p in "G $AB/vkgraph-g" "H $V" "G $AB/vkgraph-g"; do
  set -- $p
  $2 test-ops --perf -o moe_router_topk > $L/perf-$1.txt 2>&1; $2 test-ops --perf -o moe_route >> $L/perf-$1.txt 2>&1
  echo "$1: $(grep -E 'moe_router_topk\(k_dim=2048|moe_route\(experts=128,k=8,n=1\)' $L/perf-$1.txt | sed 's/.*\] //' | tr '\n' ' ')"
done; pack
(cd $man && timeout 30 $D/vk_ops --test-threads 1 > $L/H-vk_ops.txt 2>&1; echo "H vk_ops rc=$? $(res $L/H-vk_ops.txt)")
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 40 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $V test-ops --validate -o moe_router_topk > $L/val-moe_router_topk.txt 2>&1; echo "H test-ops --validate -o moe_router_topk rc=$? $(grep -E 'passed|validated' $L/val-moe_router_topk.txt | tr '\n' ' ' | cut -c1-150)")
pack
(cd $man && timeout 110 $D/model_vulkan --test-threads 1 > $L/H-model_vulkan.txt 2>&1; echo "H model_vulkan rc=$? $(res $L/H-model_vulkan.txt)")
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
