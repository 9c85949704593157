# Call 2 (2026-12-06, ninth session): D = main after the integer-dot expert mat-vec
# (mul_mat_vecq_id.comp), the f16 x of the grouped expert tile and MOE_SUM_ADD.
# Its new ops against the CPU (test-ops), model_vulkan, then qwen3-30b-a3b q4_0 tg128/pp512
# C (call 1's build) vs D alternated, and D's per-op decode profile.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
mkdir -p /tmp/ab && tar xJf target/ab.tar.xz -C /tmp/ab; AB=/tmp/ab/ab
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$V gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf > $L/gen.txt 2>&1 &
GP=$!
for o in mul_mat_vecq_id mul_mat_id moe_sum moe_sum_add mul_mat_vecq; do
  (cd $man && timeout 100 $V test-ops -o $o > $L/test-ops-$o.txt 2>&1; echo "test-ops $o rc=$? $(tail -1 $L/test-ops-$o.txt | cut -c1-120)")
done
(cd $man && timeout 150 $D/model_vulkan --test-threads 1 > $L/t-model_vulkan.txt 2>&1; echo "model_vulkan rc=$? $(grep 'test result' $L/t-model_vulkan.txt | cut -c1-60)")
pack; echo "t=$SECONDS wait gen"; wait $GP; tail -1 $L/gen.txt
for i in 1 2; do
  for b in c d; do
    if [ $b = d ]; then X=$V; else X=$AB/vkgraph-$b; fi
    timeout 60 $X bench -m /tmp/q30.gguf -p 512 -n 128 -r 3 --qkv auto > $L/q30-$b$i.txt 2>&1
  done
  echo "#$i C: $(grep -E 'pp512|tg128' $L/q30-c$i.txt | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}') D: $(grep -E 'pp512|tg128' $L/q30-d$i.txt | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}')"
done; pack
timeout 60 $V bench -m /tmp/q30.gguf -p 0 -n 64 -r 2 --qkv auto --profile > $L/profile-q30.txt 2>&1
grep -E "MUL_MAT_ID|MOE|SWIGLU|ADD|ATTENTION|MUL_MAT|stage|tg64" $L/profile-q30.txt | head -30
timeout 60 $V dump -m /tmp/q30.gguf --qkv auto > $L/dump-q30.txt 2>&1; grep -E "MUL_MAT_ID|mul_mat_vecq_id|^\| auto" $L/dump-q30.txt | head -6
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
