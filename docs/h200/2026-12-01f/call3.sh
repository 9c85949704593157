L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph; A=$PWD/target/vkgraph-a
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
( $V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf ) > $L/gen.txt 2>&1 &
GP=$!
(cd $man && timeout 100 $D/vk_attention --test-threads 1 > $L/vk_attention.txt 2>&1; echo "vk_attention rc=$?"; grep "test result" $L/vk_attention.txt)
(cd $man && timeout 100 $V test-ops -o attention > $L/test-ops-attn.txt 2>&1; echo "test-ops attention rc=$?"; tail -1 $L/test-ops-attn.txt)
(cd $man && timeout 100 $V test-ops -o attention_rope > $L/test-ops-attnr.txt 2>&1; echo "test-ops attention_rope rc=$?"; tail -1 $L/test-ops-attnr.txt)
wait $GP
for m in q06 l8; do for r in 1 2; do for b in A V; do
  echo "== $m bin=$b round $r" >> $L/ab.txt
  timeout 60 ${!b} bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto >> $L/ab.txt 2>&1
done; done; done
grep -E "==|tg128" $L/ab.txt
timeout 25 $V bench -m /tmp/q06.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/profile-q06.txt 2>&1; grep -E "ATTENTION|GPU time|wall" $L/profile-q06.txt | head -3
timeout 25 $A bench -m /tmp/q06.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/profile-q06-a.txt 2>&1; grep -E "ATTENTION|GPU time|wall" $L/profile-q06-a.txt | head -3
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
