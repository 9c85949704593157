# Call 1 (2026-12-07, twelfth session; the eleventh session's call2.sh, never run there): I = main 7a2c1bf
# (the op table, per-backend arena and scratch, weights streamed across tensors) plus this
# session's mat-vec loads and integer-dot fused mat-vec (K of call2.sh) in
# target/device.tar.xz; in target/ab.tar.xz G = the tenth session's closing build (vkgraph-g) and
# H = branch moe-router-rank 22c9f26 (vkgraph-h, vk_ops-h, model_vulkan-h: the router's top-k as a one-pass ranking).
# 1. I: all 14 GPU test binaries (op_table new), op_table under the validation layer.
# 2. G / H / G: test-ops --perf of the routing ops; H's kernel tests (vk_ops, model_vulkan).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; cat $L/tests-summary.txt
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
pack
VV=/tmp/vvl; mkdir -p $VV; for f in .vvl/*.deb; do dpkg -x "$f" $VV; done; VL=$VV/usr/lib/x86_64-linux-gnu
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $D/op_table --test-threads 1 > $L/val-op_table.txt 2>&1; echo "I op_table (validated) rc=$? $(grep 'test result' $L/val-op_table.txt | cut -c1-60)")
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for p in "G $AB/vkgraph-g" "H $AB/vkgraph-h" "G $AB/vkgraph-g" "I $V"; do
  set -- $p
  $2 test-ops --perf -o moe_router_topk > $L/perf-$1.txt 2>&1; $2 test-ops --perf -o moe_route >> $L/perf-$1.txt 2>&1
  echo "$1: $(grep -E 'moe_router_topk\(k_dim=2048|moe_route\(experts=128,k=8,n=1\)' $L/perf-$1.txt | sed 's/.*\] //' | tr '\n' ' ')"
done; pack
(cd $man && timeout 40 $AB/vk_ops-h --test-threads 1 > $L/H-vk_ops.txt 2>&1; echo "H vk_ops rc=$? $(res $L/H-vk_ops.txt)")
(cd $man && VK_LAYER_PATH=$VV/usr/share/vulkan/explicit_layer.d timeout 40 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu $AB/vkgraph-h test-ops --validate -o moe_router_topk > $L/val-H-moe_router_topk.txt 2>&1; echo "H test-ops --validate -o moe_router_topk rc=$? $(grep -E 'passed|validated' $L/val-H-moe_router_topk.txt | tr '\n' ' ' | cut -c1-150)")
pack
(cd $man && timeout 110 $AB/model_vulkan-h --test-threads 1 > $L/H-model_vulkan.txt 2>&1; echo "H model_vulkan rc=$? $(res $L/H-model_vulkan.txt)")
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
