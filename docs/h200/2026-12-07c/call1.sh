# Call 1 (2026-12-07, fourteenth session): M = main 0f2ceba (target/device.tar.xz), X =
# branch coopmat-coalesce 1e25ca7 (target/device-X.tar.xz: M plus coalesced global loads in
# the coopmat prompt tile, and the prompt attention on cooperative matrices), Y = X's
# matmul change with a 128 x 128 dense tile instead of 64 x 256 (in target/device-X.tar.xz as device-X/Y/:
# vkgraph and the prefill bench only; no coopmat attention). The prefill kernel bench
# M / X / Y / M / X / Y, X's GPU tests (the coopmat matmuls and attention, the integer-dot
# kernels the thirteenth session never ran on a GPU: also the final-main check call2.sh of
# 2026-12-07b was to be), then llama-8b q4_0 pp512 M / X / Y / M / X / Y (`vkgraph bench
# -p 512 -n 0 -r 3`) and per-node profiles of one pp512 batch, X then M.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/device-X.tar.xz -C /tmp/dev
D=/tmp/dev/device; X=/tmp/dev/device-X; Y=$X/Y; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
$D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf > $L/gen.txt 2>&1 &
GP=$!
pf() { VKGRAPH_BENCH_TYPES=q4_0,q4_K,q6_K,f16 timeout 60 $1/prefill > $L/prefill-$2.txt 2>&1
  echo "prefill $2: $(grep coopmat $L/prefill-$2.txt | grep '^|' | awk -F'|' '{printf "%s %s %s %s: %s; ", $2, $3, $4, $6, $8}')"; }
pf $D M; pf $X X; pf $Y Y; pf $D M2; pf $X X2; pf $Y Y2; pack
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_attention vk_mul_mat model_vulkan; do
  (cd "$man" && timeout 120 $X/$t --test-threads 1 > "$L/X-$t.txt" 2>&1; echo "X $t rc=$? $(res $L/X-$t.txt)")
done
for o in attention mul_mat mul_mat_id mul_mat_vecq mul_mat_vecq_layer mul_mat_vecq_id; do
  timeout 60 $X/vkgraph test-ops -o $o > $L/X-test-ops-$o.txt 2>&1; echo "X test-ops -o $o rc=$? $(tail -1 $L/X-test-ops-$o.txt | cut -c1-110)"
done; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M X Y M2 X2 Y2; do
  [ $SECONDS -gt 540 ] && break
  B=$D; [ ${b:0:1} = X ] && B=$X; [ ${b:0:1} = Y ] && B=$Y
  timeout 30 $B/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-$b.txt 2>&1
  echo "l8 pp512 $b: $(t $L/pp-$b.txt pp512)"
done
[ $SECONDS -lt 530 ] && timeout 30 $X/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 1 --qkv auto --profile > $L/pp-profile-X.txt 2>&1
[ $SECONDS -lt 550 ] && timeout 30 $D/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 1 --qkv auto --profile > $L/pp-profile-M.txt 2>&1
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
