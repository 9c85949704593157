# Call 5 (fifteenth session): N = branch shaderc-0.10-main ac9fa9b (shaderc 0.10, the one-pass
# coopmat prompt attention with the K/V prefetch, and the expert-indexed coopmat tile
# 64 x 32 on 2 x 2 subgroups; target/device.tar.xz) against M = main 0ecddeb's vkgraph
# (128 x 128 on 2 x 4) and two more ID tiles (target/ab-I.tar.xz): I1 = 64 x 64 on 2 x 2,
# I2 = 128 x 32 on 4 x 1. First N's GPU tests, then test-ops mul_mat_id of I1 and I2,
# then qwen3-30b-a3b q4_0 pp512 (and llama-8b q4_0 pp512 / pp4096 for M / N), alternating.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-I.tar.xz -C /tmp/dev
D=/tmp/dev/device; AB=/tmp/dev/ab; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]" $L/devices.txt | head -1
( $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf
  $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -5; }
for x in vk_attention model_vulkan vk_mul_mat vk_ops; do
  (cd "$man" && timeout 150 $D/$x --test-threads 1 > "$L/N-$x.txt" 2>&1; echo "N $x rc=$? $(res $L/N-$x.txt)")
done
for o in attention mul_mat mul_mat_id; do
  timeout 60 $D/vkgraph test-ops -o $o > $L/N-test-ops-$o.txt 2>&1; echo "N test-ops -o $o rc=$? $(tail -1 $L/N-test-ops-$o.txt | cut -c1-110)"
done
for b in I1 I2; do
  timeout 60 $AB/$b/vkgraph test-ops -o mul_mat_id > $L/$b-test-ops-mul_mat_id.txt 2>&1; echo "$b test-ops -o mul_mat_id rc=$? $(tail -1 $L/$b-test-ops-mul_mat_id.txt | cut -c1-110)"
done; pack
wait $GP; grep wrote $L/gen.txt | cut -c1-80; echo "t=$SECONDS"
bin() { case $1 in N) echo $D;; *) echo $AB/$1;; esac; }
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for r in 1 2; do
  for b in M N I1 I2; do
    timeout 60 $(bin $b)/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-q30-$b-$r.txt 2>&1
    echo "q30 pp512 $b: $(t $L/pp-q30-$b-$r.txt 'pp512') (t=$SECONDS)"
  done; pack
done
for b in M N; do
  timeout 40 $(bin $b)/vkgraph bench -m /tmp/l8.gguf -p 512,4096 -n 0 -r 2 --qkv auto > $L/pp-l8-$b.txt 2>&1
  echo "l8 $b: $(t $L/pp-l8-$b.txt 'pp512|pp4096') (t=$SECONDS)"
done
[ $SECONDS -lt 330 ] && timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 0 -r 1 --qkv auto --profile > $L/q30-pp-profile-N.txt 2>&1
grep -E "^\| MUL_MAT_ID" $L/q30-pp-profile-N.txt | head -3; echo "t=$SECONDS"
pack; rm -rf $OUT/logs
