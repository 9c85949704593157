# Call 1 (twenty-first session): the twentieth session's last kernel (f0ef974: the RoPE
# fold's owner row swapped in from registers) and its split knobs, beside llama.cpp CUDA
# built in the same command (niced, while validated tests and profiles run).
# M = f1c0725 (target/vkgraph-M19.xz), N = main b343d5b (target/vkgraph-N.xz), H = main
# bf1526b (target/device.tar.xz: N's kernels, less host work per step, the step's wall
# time split in the profile; VKGRAPH_FENCE_SPIN, off by default, A/B as S = H with a
# 20 ms poll).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(nice -n 15 bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-M19.xz > /tmp/vkgraph-M && chmod +x /tmp/vkgraph-M
xz -dc target/vkgraph-N.xz > /tmp/vkgraph-N && chmod +x /tmp/vkgraph-N
bin() { case $1 in M) echo /tmp/vkgraph-M;; N) echo /tmp/vkgraph-N;; *) echo $D/vkgraph;; esac; }
# S: H polling the fence (env set per run).
sp() { [ $1 = S ] && echo VKGRAPH_FENCE_SPIN=20000 || echo VKGRAPH_X=0; }
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
vt vk_attention 90 ""
vt model_vulkan 120 forced_decode_paths
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
# The split knobs on H, while llama.cpp builds (niced; all three under the same load).
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
for m in q06 l8; do for e in VKGRAPH_X=0 VKGRAPH_ATTN_VPRE=1 VKGRAPH_ATTN_QB=1 VKGRAPH_ATTN_MIN_SPLIT=2048; do
  env $e timeout 60 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 64 -d 512,4096 -r 2 --qkv auto > $L/knob-$e-$m.txt 2>&1
  echo "H $e $m: $(t $L/knob-$e-$m.txt tg64) (t=$SECONDS)"
done; done; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
for r in 1; do for b in M N H S; do B=$(bin $b); for m in q06 l8; do
  env $(sp $b) timeout 60 $B bench -m /tmp/$m.gguf -p 0 -n 16 -d 0,2048 -r 1 --qkv auto --profile > $L/p$r-$b-$m.txt 2>&1
  echo "p$r $b $m ROPE_ATTENTION µs (node at 25 / 2057): $(grep -E 'ROPE_ATTENTION' $L/p$r-$b-$m.txt | awk -F'|' 'NR%2==0{printf "%s ", $5}') host: $(grep -oE 'host \+ sync ≈ [0-9.]+' $L/p$r-$b-$m.txt | awk '{printf "%s ", $5}')"; grep -E '^wall' $L/p$r-$b-$m.txt | cut -c1-150
done; done; done; pack
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
for m in q06 l8; do for b in M N H S; do B=$(bin $b)
  env $(sp $b) timeout 70 $B bench -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 --qkv auto > $L/d-$b-$m.txt 2>&1
  echo "$b $m: $(t $L/d-$b-$m.txt tg64) (t=$SECONDS)"
done; done; pack
LB=/tmp/ll/build/bin/llama-bench
for m in q06 l8; do
  [ -x $LB ] && timeout 100 $LB -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 -ngl 99 -fa 1 > $L/llama-$m-depth.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m-depth.txt 'tg64') (t=$SECONDS)"; pack
done
for m in q06 l8; do
  [ -x $LB ] && timeout 60 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m-tg128.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m-tg128.txt 'pp512|tg128') (t=$SECONDS)"
  for b in N H S; do B=$(bin $b)
    env $(sp $b) timeout 50 $B bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/tg128-$b-$m.txt 2>&1
    echo "$b $m: $(t $L/tg128-$b-$m.txt 'pp512|tg128') (t=$SECONDS)"
  done; pack
done
pack; rm -rf $OUT/logs
