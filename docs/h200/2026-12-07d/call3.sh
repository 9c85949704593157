# Call 3 (fifteenth session): N = branch attn-one-pass (main cf4e67f + shaderc 0.10 with
# the coopmat kernels in KHR GLSL, + the coopmat prompt attention in one pass with an
# online softmax: the accumulators rescaled by a per-row factor matrix, component-wise;
# target/device.tar.xz) against M = main 0ecddeb's vkgraph (two passes) and two variants
# of N (target/ab-N.tar.xz): N2 = the next K/V tile prefetched into registers, N3 = tiles
# of 64 cache rows. First N's GPU tests (the attention ones, model_vulkan, vk_mul_mat,
# test-ops attention / mul_mat); then llama-8b q4_0 pp512 and pp4096, qwen3-0.6b q4_0
# pp512, alternating binaries; a pp4096 profile of the fastest.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-N.tar.xz -C /tmp/dev
D=/tmp/dev/device; AB=/tmp/dev/ab; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]" $L/devices.txt | head -1
( $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED|NMSE" $1 | head -5; }
for x in vk_attention model_vulkan vk_mul_mat; do
  (cd "$man" && timeout 150 $D/$x --test-threads 1 > "$L/N-$x.txt" 2>&1; echo "N $x rc=$? $(res $L/N-$x.txt)")
done
for o in attention mul_mat; do
  timeout 60 $D/vkgraph test-ops -o $o > $L/N-test-ops-$o.txt 2>&1; echo "N test-ops -o $o rc=$? $(tail -1 $L/N-test-ops-$o.txt | cut -c1-110)"
done; pack
wait $GP; grep wrote $L/gen.txt | cut -c1-80
bin() { case $1 in N) echo $D;; *) echo $AB/${1:0:2};; esac; }
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for r in 1 2; do
  for b in M N N2 N3; do
    timeout 40 $(bin $b)/vkgraph bench -m /tmp/l8.gguf -p 512,4096 -n 0 -r 2 --qkv auto > $L/pp-l8-$b-$r.txt 2>&1
    echo "l8 $b: $(t $L/pp-l8-$b-$r.txt 'pp512|pp4096') (t=$SECONDS)"
  done; pack
done
for b in M N M N; do
  timeout 30 $(bin $b)/vkgraph bench -m /tmp/q06.gguf -p 512,4096 -n 0 -r 2 --qkv auto > $L/pp-q06-$b-$SECONDS.txt 2>&1
  echo "q06 $b: $(t $(ls -t $L/pp-q06-$b-*.txt | head -1) 'pp512|pp4096')"
done; pack
timeout 60 $D/vkgraph bench -m /tmp/l8.gguf -p 4096 -n 0 -r 1 --qkv auto --profile > $L/pp4096-profile-N.txt 2>&1
grep -E "^\| ATTENTION" $L/pp4096-profile-N.txt | head -2; echo "t=$SECONDS"
pack; rm -rf $OUT/logs
