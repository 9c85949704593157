# Call 1 (nineteenth session): decode at depth. N = main (this session's build) (target/device.tar.xz:
# split-K attention with enough splits for one round at every planned length; `bench -d
# N --profile` profiles the tg step at depth N), B = main b8a345a (target/vkgraph-B.xz).
# gen-model qwen3-0.6b and llama-8b q4_0 here; tg64 at depth 0 / 2048 / 4096 alternating
# B, N, N with 64 cache rows per split (VKGRAPH_ATTN_SPLIT_ROWS=64), N with V preloaded
# (VKGRAPH_ATTN_VPRE=1); N's per-stage / per-node profiles at depth 0 and 4096. No
# llama.cpp build here (the session's device time went mostly to refused starts): its
# depth figures are the eighteenth session's (another grant).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device
xz -dc target/vkgraph-B.xz > /tmp/vkgraph-B && chmod +x /tmp/vkgraph-B
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf >> $L/gen.txt 2>&1; done
echo "gen t=$SECONDS"
# Clocks and performance state while our benches run (is the memory clock at its
# maximum under Vulkan?).
SMI=$(command -v nvidia-smi || ls /usr/local/nvidia/bin/nvidia-smi 2>/dev/null)
[ -n "$SMI" ] && ($SMI --query-gpu=timestamp,pstate,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.draw,utilization.gpu,utilization.memory --format=csv -lms 500 > $L/smi.csv 2>&1 &) || echo "no nvidia-smi"
# Validation helpers (the Khronos layer with synchronization validation).
V=/tmp/vvl; mkdir -p $V; for f in .vvl/*.deb; do dpkg -x "$f" $V; done; VL=$V/usr/lib/x86_64-linux-gnu
man=$(cat $D/MANIFEST_DIR)
vt() { (cd $man && VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d VKGRAPH_REQUIRE_VALIDATION=1 VKGRAPH_EXPECT_COOPMAT=1 \
  timeout $2 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/$1 --test-threads 1 $3 > $L/validated-$1.txt 2>&1; echo "$1 $3 (validated) rc=$? $(grep -E '^test result' $L/validated-$1.txt | tail -1) (t=$SECONDS $(date +%T))"); }
t() { grep -E "$2" $1 | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
ab() { # model, variants
  for b in $2; do
    B=$D/vkgraph; [ $b = B ] && B=/tmp/vkgraph-B; E=VKGRAPH_X=0; [ $b = N64 ] && E=VKGRAPH_ATTN_SPLIT_ROWS=64
    [ $b = Nvpre ] && E=VKGRAPH_ATTN_VPRE=1
    env $E timeout 100 $B bench -m /tmp/$1.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 --qkv auto >> $L/$b-$1.txt 2>&1
    echo "$b $1: $(t $L/$b-$1.txt tg64) (t=$SECONDS $(date +%T))"
  done; pack
}
prof() {
  timeout 100 $D/vkgraph bench -m /tmp/$1.gguf -p 0 -n 16 -d 0,4096 -r 1 --qkv auto --profile > $L/N-$1-profile.txt 2>&1
  grep -E "^### |GPU per|ATTENTION" $L/N-$1-profile.txt | cut -c1-140; pack
}
# Most important first (the call may be cut short): the split-count fix on llama-8b.
ab l8 "B N"
ab l8 "N64 Nvpre"
prof l8
vt vk_attention 120 ""
(VK_LAYER_PATH=$V/usr/share/vulkan/explicit_layer.d timeout 60 $VL/ld-linux-x86-64.so.2 --library-path $VL:/usr/lib/x86_64-linux-gnu \
  $D/vkgraph test-ops --validate -o attention > $L/validated-test-ops-attention.txt 2>&1; echo "test-ops --validate -o attention rc=$? $(tail -2 $L/validated-test-ops-attention.txt | tr '\n' ' ' | cut -c1-200)")
pack
ab q06 "B N"
prof q06
vt model_vulkan 90 split_attention
pkill -f "query-gpu"
pack; rm -rf $OUT/logs
