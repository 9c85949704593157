# Call 8 (fifteenth session): S = main e93e85e + the dense coopmat matmul's 64 x 32 tile
# for grids of fewer than 64 wide-tile workgroups + the mat_vec bench's single rotation
# pool (target/device.tar.xz), against M = main e93e85e's vkgraph (target/ab-M.tar.xz).
# S's GPU tests of the matmuls; qwen3-0.6b q4_0 pp512 M / S / M / S (its attn_output and
# ffn_down matmuls: 32 wide-tile workgroups at 512 tokens); the mat_vec sweep at m = 4096,
# k = 14336 in one process (does the pool end the drift of call 6?).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-M.tar.xz -C /tmp/dev
D=/tmp/dev/device; M=/tmp/dev/ab/M; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -5; }
for x in vk_mul_mat model_vulkan; do
  (cd "$man" && timeout 120 $D/$x --test-threads 1 > "$L/S-$x.txt" 2>&1; echo "S $x rc=$? $(res $L/S-$x.txt)")
done
for o in mul_mat mul_mat_id; do
  timeout 60 $D/vkgraph test-ops -o $o > $L/S-test-ops-$o.txt 2>&1; echo "S test-ops -o $o rc=$? $(tail -1 $L/S-test-ops-$o.txt | cut -c1-110)"
done; pack
wait $GP
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for b in M S M2 S2; do
  case $b in M*) X=$M;; *) X=$D;; esac
  timeout 30 $X/vkgraph bench -m /tmp/q06.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-q06-$b.txt 2>&1
  echo "q06 pp512 $b: $(t $L/pp-q06-$b.txt pp512) (t=$SECONDS)"
done; pack
VKGRAPH_BENCH_SHAPES=4096x14336 timeout 100 $D/mat_vec > $L/mat_vec.md 2>&1
grep -E "\| 1 \| (int8|float) \| DRAM" $L/mat_vec.md | awk -F'|' '{printf "%s %s %s %s\n", $2, $6, $8, $10}' | tr -s ' ' | tr '\n' ';'; echo; echo "t=$SECONDS"
pack; rm -rf $OUT/logs
