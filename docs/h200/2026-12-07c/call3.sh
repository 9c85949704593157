# Call 3 (2026-12-07, fourteenth session): call2.sh cut to the device time left (285 s after
# eight refused starts this session): no llama.cpp build. Binaries as call2.sh: M =
# prefill-variants 393a953 (target/device.tar.xz), ab-V/{V5,V7,V1} dense-tile variants,
# ab-V/S = shaderc-0.10-r2 8a75ae6, ab-V/A = attn-split-eff 5e685ac. Order: the tests that
# decide merges (A, S, M), then the A/Bs (tg128 M / A, pp512 M / V5 / V7 / V1), then
# vkgraph's pp512 + tg128 on two files; logs packed after each step.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-V.tar.xz -C /tmp/dev
D=/tmp/dev/device; AV=/tmp/dev/ab-V; S=$AV/S; A=$AV/A; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf ) > $L/gen.txt 2>&1 &
GP=$!
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
tst() { (cd "$man" && timeout 100 $2/$3 --test-threads 1 > "$L/$1-$3.txt" 2>&1; echo "$1 $3 rc=$? $(res $L/$1-$3.txt)"); }
tst A $A vk_attention; tst A $A model_vulkan; pack
tst S $S vk_attention; tst S $S vk_mul_mat; tst S $S model_vulkan
for o in mul_mat attention; do
  timeout 60 $S/vkgraph test-ops -o $o > $L/S-test-ops-$o.txt 2>&1; echo "S test-ops -o $o rc=$? $(tail -1 $L/S-test-ops-$o.txt | cut -c1-110)"
done; pack
tst M $D vk_mul_mat; tst M $D model_vulkan; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
for m in l8 q06; do
  bs="M A Mb Ab"; [ $m = q06 ] && bs="M A"
  for b in $bs; do
    case $b in M*) X=$D;; *) X=$A;; esac
    timeout 30 $X/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto > $L/tg-$m-$b.txt 2>&1
  done
  echo "$m tg128 M: $(t $L/tg-$m-M.txt tg128) A: $(t $L/tg-$m-A.txt tg128) M: $(t $L/tg-$m-Mb.txt tg128) A: $(t $L/tg-$m-Ab.txt tg128)"; pack
done
for b in M V5 V7 V1 S; do
  case $b in M) X=$D;; *) X=$AV/$b;; esac
  timeout 30 $X/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 2 --qkv auto > $L/pp-$b.txt 2>&1
  echo "l8 pp512 $b: $(t $L/pp-$b.txt pp512)"
done; pack
timeout 30 $D/vkgraph bench -m /tmp/q06.gguf -p 512 -n 0 -r 3 --qkv auto > $L/pp-q06-M.txt 2>&1
echo "q06 pp512 M: $(t $L/pp-q06-M.txt pp512)"
for b in M V5 V7 V1; do
  [ $SECONDS -gt 200 ] && break
  case $b in M) X=$D;; *) X=$AV/$b;; esac
  VKGRAPH_PIPELINE_STATS=1 VKGRAPH_BENCH_TYPES=q4_0 timeout 30 $X/prefill > $L/prefill-$b.txt 2>&1
  echo "prefill $b: $(grep 'x f16' $L/prefill-$b.txt | grep '^|' | awk -F'|' '{printf "%s %s %s: %s; ", $2, $3, $4, $8}')"
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
