# Call 3 (eighteenth session): N = main 50f3987 (target/device.tar.xz: routing by
# subgroup rounds; VKGRAPH_MOE_ROUTE=0/1 for the A/B; VKGRAPH_ATTN_MIN_SPLIT for the
# decode split's threshold), B = main b8a345a (target/vkgraph-B.xz). Changed kernels
# under the validation layer, the A/Bs, llama.cpp 0c1e570 CUDA's llama-bench beside.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done
 $D/vkgraph gen-model --arch qwen3moe --preset qwen3-30b-a3b --quant q4_0 -o /tmp/q30.gguf) > $L/gen.txt 2>&1 &
GP=$!
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1$3.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1$3.txt | tail -1) (t=$SECONDS)"); }
for o in mul_mat_id mul_mat_vecq_id; do
  (VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
    $D/vkgraph test-ops --validate -o $o > $L/validated-test-ops-$o.txt 2>&1; echo "test-ops --validate -o $o rc=$? $(tail -2 $L/validated-test-ops-$o.txt | tr '\n' ' ' | cut -c1-200)")
done
vt model_vulkan 150 tiny_models_match_cpu_on_forced
vt model_vulkan 60 attention_replans
pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-90
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
run() { # label binary model args...
  local lb=$1 B=$2 m=$3; shift 3
  timeout 90 env ${E:-VKGRAPH_X=0} $B bench -m /tmp/$m.gguf "$@" --qkv auto >> $L/$lb-$m.txt 2>&1
  echo "$lb $m $*: $(tail -$((4 + ${NL:-0})) $L/$lb-$m.txt | t /dev/stdin 'pp|tg') (t=$SECONDS)"; }
for i in 1 2; do
  run N $D/vkgraph q30 -p 512 -n 128 -r 2
  E=VKGRAPH_MOE_ROUTE=0 run N-noroute $D/vkgraph q30 -p 512 -n 128 -r 2
  run B /tmp/vkgraph-B q30 -p 512 -n 128 -r 2
done; pack
for m in q06 l8; do
  run N $D/vkgraph $m -p 512 -n 128 -r 3
  run B /tmp/vkgraph-B $m -p 512 -n 128 -r 3
done; pack
# The decode split's threshold: split from 512 planned rows (default) or never up to 4k.
for m in q06 l8; do for s in 512 8192 512 8192; do
  E=VKGRAPH_ATTN_MIN_SPLIT=$s NL=3 run N-ms$s $D/vkgraph $m -p 0 -n 64 -d 512,1024,2048,4096 -r 2
done; done; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in "q06 3" "l8 2" "q30 2"; do set -- $m
  [ -x $LB ] && timeout 100 $LB -m /tmp/$1.gguf -p 512 -n 128 -r $2 -ngl 99 -fa 1 > $L/llama-$1.txt 2>&1
  echo "$1 llama.cpp CUDA: $(t $L/llama-$1.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
for m in q06 l8; do
  [ -x $LB ] && timeout 100 $LB -m /tmp/$m.gguf -p 0 -n 64 -d 512,2048,4096 -r 2 -ngl 99 -fa 1 > $L/llama-$m-depth.txt 2>&1
  echo "$m llama.cpp CUDA depth: $(t $L/llama-$m-depth.txt 'tg64') (t=$SECONDS)"; pack
done
timeout 60 $D/vkgraph bench -m /tmp/q30.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/N-q30-profile.txt 2>&1
grep -A10 "per stage" $L/N-q30-profile.txt | head -12
pack; rm -rf $OUT/logs
