# Call 3 (twentieth session; NOT RUN: too little device time was left to start a machine): N = main (target/device.tar.xz: the owner's new row swapped
# in from registers), M = main f1c0725 (target/vkgraph-M19.xz). Call 2's N (8b25b71) made
# the unsplit decode attention ~1 us faster and the split one ~1 us slower (a shared load
# per element in its loops): does this N keep the first and lose the second? Validated
# attention tests first, then per-node attention times and tg64 at depth, alternating.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M19.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1$3.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1$3.txt | tail -1) (t=$SECONDS)"); }
vt vk_attention 60 ""
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
for r in 1 2; do for b in M N; do B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M; for m in q06 l8; do
  timeout 60 $B bench -m /tmp/$m.gguf -p 0 -n 16 -d 0,512,2048 -r 1 --qkv auto --profile > $L/p$r-$b-$m.txt 2>&1
  echo "p$r $b $m ROPE_ATTENTION µs (stage, node at 25 / 521 / 2057): $(grep -E 'ROPE_ATTENTION' $L/p$r-$b-$m.txt | awk -F'|' '{printf "%s ", $5}')"
done; done; done; pack
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
for m in q06 l8; do for b in M N; do B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/tg128-$b-$m.txt 2>&1
  echo "$b $m: $(t $L/tg128-$b-$m.txt 'pp512|tg128') (t=$SECONDS)"
done; done
pack
for r in 1; do for m in q06 l8; do for b in M N; do B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M
  timeout 60 $B bench -m /tmp/$m.gguf -p 0 -n 64 -d 0,512,2048,4096 -r 2 --qkv auto > $L/r$r-$b-$m.txt 2>&1
  echo "r$r $b $m: $(t $L/r$r-$b-$m.txt tg64) (t=$SECONDS)"
done; done; pack; done
# The split launch's knobs on this N (the kernel bench favoured both in DRAM mode):
# V and K preloaded (VKGRAPH_ATTN_VPRE=1), one query head per workgroup (VKGRAPH_ATTN_QB=1).
for m in q06 l8; do for e in VKGRAPH_ATTN_VPRE=1 VKGRAPH_ATTN_QB=1 VKGRAPH_X=0; do
  env $e timeout 60 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 64 -d 512,2048,4096 -r 2 --qkv auto > $L/knob-$e-$m.txt 2>&1
  echo "N $e $m: $(t $L/knob-$e-$m.txt tg64) (t=$SECONDS)"
done; done
pack; rm -rf $OUT/logs
