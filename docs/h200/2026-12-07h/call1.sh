# Call 1 (nineteenth session): where a decode step's time goes at depth 4096.
# N = this session's build (target/device.tar.xz: `bench -d N --profile` profiles the tg
# step at depth N). gen-model qwen3-0.6b and llama-8b q4_0 here; per-stage / per-node
# profiles of one step at depth 0 and 4096; the same at 4096 with 64 cache rows per
# split-K workgroup (VKGRAPH_ATTN_SPLIT_ROWS=64) and never split (VKGRAPH_ATTN_MIN_SPLIT).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf >> $L/gen.txt 2>&1; done
echo "gen t=$SECONDS"
st() { grep -A12 "per stage" $1 | grep -E "ATTENTION|GPU per" | cut -c1-150; }
for m in q06 l8; do
  for e in "VKGRAPH_X=0 def" "VKGRAPH_ATTN_SPLIT_ROWS=64 r64" "VKGRAPH_ATTN_MIN_SPLIT=100000 nosplit"; do set -- $e
    env $1 timeout 120 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 64 -d 0,4096 -r 2 --qkv auto --profile > $L/$m-$2.txt 2>&1
    echo "== $m $2: $(grep -E 'tg64' $L/$m-$2.txt | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}') (t=$SECONDS)"
    st $L/$m-$2.txt
    pack
  done
done
pack; rm -rf $OUT/logs
