# Call 2 (fifteenth session), on the machine call 1 left warm: what call 1 had no time
# for. A (attn-split-eff 5e685ac, ab-V/A): its attention tests and tg128 A/B against M
# (main); M's vk_mul_mat again (it passed 120 s in call 1: slow or hung?); a per-node
# profile of llama-8b q4_0 pp4096 (0.63x CUDA in call 1: where does the time go?).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-V.tar.xz -C /tmp/dev
D=/tmp/dev/device; A=/tmp/dev/ab-V/A; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
( $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for x in vk_attention model_vulkan; do
  (cd "$man" && timeout 100 $A/$x --test-threads 1 > "$L/A-$x.txt" 2>&1; echo "A $x rc=$? $(res $L/A-$x.txt)")
done; pack
wait $GP
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for m in l8 q06; do
  for b in M A Mb Ab; do
    case $b in M*) X=$D;; *) X=$A;; esac
    timeout 30 $X/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto > $L/tg-$m-$b.txt 2>&1
  done
  echo "$m tg128 M: $(t $L/tg-$m-M.txt tg128) A: $(t $L/tg-$m-A.txt tg128) M: $(t $L/tg-$m-Mb.txt tg128) A: $(t $L/tg-$m-Ab.txt tg128)"
done; pack
timeout 60 $D/vkgraph bench -m /tmp/l8.gguf -p 4096 -n 0 -r 1 --qkv auto --profile > $L/pp4096-profile-M.txt 2>&1; echo "pp4096 profile rc=$?"; pack
(cd "$man" && timeout 240 $D/vk_mul_mat --test-threads 1 > "$L/M-vk_mul_mat.txt" 2>&1; echo "M vk_mul_mat rc=$? t=$SECONDS $(res $L/M-vk_mul_mat.txt)")
pack; rm -rf $OUT/logs
