# Call 1 (2026-12-07, fifteenth session): M = main 1fd10e7 (code 0ecddeb: coalesced
# coopmat prompt loads and the coopmat prompt attention; target/device.tar.xz) and, from
# target/ab-V.tar.xz (the fourteenth session's branches, never run): V5 = 64 x 256 tile
# with the x groups loaded at the stash (X_PREFETCH off), V7 = 64 x 128 with it off, V1 =
# 64 x 128 with it on (branch prefill-variants 393a953); S = shaderc-0.10-r2 8a75ae6
# (shaderc 0.10, the coopmat kernels in KHR GLSL); A = attn-split-eff 5e685ac (split-K
# attention running only the splits that hold rows). llama.cpp 0c1e570 CUDA's
# llama-bench builds in the background meanwhile. Then: the prefill kernel bench of each,
# M's GPU tests, llama-8b q4_0 pp512 M V5 V7 V1; the fastest (B) runs test-ops mul_mat /
# mul_mat_id and the closing table: per file `vkgraph bench -p 512 -n 128 -r 3 --qkv
# auto` and `llama-bench -p 512 -n 128 -r 3 -ngl 99 -fa 1`, one command; pp4096 on
# llama-8b; S's GPU tests, A's attention tests and tg128 A/B; at the end the mat_vec
# bench of q4_0 in both shape orders (is the 4096² figure a clock/drift artefact?).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh > /dev/null 2>&1
tar xJf target/ab-V.tar.xz -C /tmp/dev
D=/tmp/dev/device; AV=/tmp/dev/ab-V; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
( $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf
  $D/vkgraph gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf
  $D/vkgraph gen-model --arch llama --preset llama-8b --quant q4_k_m -o /tmp/l8k.gguf ) > $L/gen.txt 2>&1 &
GP=$!
bin() { case $1 in M*) echo $D;; *) echo $AV/${1:0:2};; esac; }
pf() { VKGRAPH_PIPELINE_STATS=1 VKGRAPH_BENCH_TYPES=q4_0,q4_K,q6_K timeout 60 $(bin $1)/prefill > $L/prefill-$1.txt 2>&1
  echo "prefill $1: $(grep 'x f16' $L/prefill-$1.txt | grep '^|' | awk -F'|' '{printf "%s %s %s: %s; ", $2, $3, $4, $8}')"; }
for b in M V5 V7 V1; do pf $b; done; pack
res() { grep 'test result' $1 | cut -c1-70; grep -E "panicked|FAILED" $1 | head -3; }
for t in vk_attention vk_mul_mat model_vulkan; do
  (cd "$man" && timeout 120 $D/$t --test-threads 1 > "$L/M-$t.txt" 2>&1; echo "M $t rc=$? $(res $L/M-$t.txt)")
done; pack
echo "t=$SECONDS wait gen"; wait $GP; grep wrote $L/gen.txt | cut -c1-80
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s ", $(NF-1)}'; }
# A variant replaces M only if its better run beats M's better run by 2 %.
best=M; bestv=0; mv=0
for b in M V5 V7 V1; do
  timeout 30 $(bin $b)/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 2 --qkv auto > $L/pp-$b.txt 2>&1
  v=$(grep pp512 $L/pp-$b.txt | awk -F'|' '{print $(NF-1)}' | awk '{print int($1)}'); v=${v:-0}
  echo "l8 pp512 $b: $v"
  case $b in M*) [ $v -gt $mv ] && mv=$v;; *) [ $v -gt $bestv ] && { best=${b:0:2}; bestv=$v; };; esac
done
[ $((bestv * 100)) -lt $((mv * 102)) ] && { best=M; bestv=$mv; }
B=$(bin $best); echo "best: $best ($bestv)"; pack
if [ $best != M ]; then
  for o in mul_mat mul_mat_id; do
    timeout 60 $B/vkgraph test-ops -o $o > $L/B-test-ops-$o.txt 2>&1; echo "$best test-ops -o $o rc=$? $(tail -1 $L/B-test-ops-$o.txt | cut -c1-110)"
  done
fi
for r in a 1 b; do
  if [ $r = 1 ]; then E=VKGRAPH_MMVQ=1; else E=VKGRAPH_MMVQ_LAYER=1; fi
  env $E timeout 30 $D/vkgraph bench -m /tmp/q06.gguf -p 0 -n 128 -r 3 --qkv auto > $L/q06-mmvq-$r.txt 2>&1
done
echo "q06 tg128 default: $(t $L/q06-mmvq-a.txt tg128) MMVQ=1: $(t $L/q06-mmvq-1.txt tg128) default: $(t $L/q06-mmvq-b.txt tg128)"; pack
# S = branch shaderc-0.10-r2 8a75ae6 (shaderc 0.10: the coopmat kernels in KHR GLSL, no
# SPIR-V rewrite; ab-V/S): its GPU tests and pp512. A = branch attn-split-eff 5e685ac (M
# plus split-K attention running only the splits that hold rows; ab-V/A): its attention
# tests (vk_attention, model_vulkan: forced split-K with the RoPE fold) and tg128 M / A.
S=$AV/S; A=$AV/A
if [ $SECONDS -lt 330 ]; then
  for x in vk_attention vk_mul_mat model_vulkan; do
    (cd "$man" && timeout 100 $S/$x --test-threads 1 > "$L/S-$x.txt" 2>&1; echo "S $x rc=$? $(res $L/S-$x.txt)")
  done
  for o in mul_mat attention; do
    timeout 60 $S/vkgraph test-ops -o $o > $L/S-test-ops-$o.txt 2>&1; echo "S test-ops -o $o rc=$? $(tail -1 $L/S-test-ops-$o.txt | cut -c1-110)"
  done
  timeout 30 $S/vkgraph bench -m /tmp/l8.gguf -p 512 -n 0 -r 2 --qkv auto > $L/pp-S.txt 2>&1; echo "l8 pp512 S: $(t $L/pp-S.txt pp512)"; pack
fi
for x in vk_attention model_vulkan; do
  [ $SECONDS -gt 330 ] && break
  (cd "$man" && timeout 100 $A/$x --test-threads 1 > "$L/A-$x.txt" 2>&1; echo "A $x rc=$? $(res $L/A-$x.txt)")
done
for m in l8 q06; do
  [ $SECONDS -gt 360 ] && break
  bs="M A Mb Ab"; [ $m = q06 ] && bs="M A"
  for b in $bs; do
    case $b in M*) X=$D;; *) X=$A;; esac
    timeout 30 $X/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto > $L/tg-$m-$b.txt 2>&1
  done
  echo "$m tg128 M: $(t $L/tg-$m-M.txt tg128) A: $(t $L/tg-$m-A.txt tg128) M: $(t $L/tg-$m-Mb.txt tg128) A: $(t $L/tg-$m-Ab.txt tg128)"
done; pack
# vkgraph's side of the closing table first (the anchor may still be building), then
# llama.cpp's on the same files, in the same command.
for m in l8 q06 l8k; do
  timeout 60 $B/vkgraph bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/C-$m.txt 2>&1
  echo "$m vkgraph ($best): $(t $L/C-$m.txt 'pp512|tg128')"
done
timeout 40 $B/vkgraph bench -m /tmp/l8.gguf -p 4096 -n 0 -r 2 --qkv auto > $L/C-l8-pp4096.txt 2>&1
echo "l8 pp4096 vkgraph: $(t $L/C-l8-pp4096.txt pp4096)"; pack
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
LB=/tmp/ll/build/bin/llama-bench
for m in l8 q06 l8k; do
  [ -x $LB ] && timeout 60 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m.txt 'pp512|tg128') (t=$SECONDS)"; pack
done
[ -x $LB ] && timeout 40 $LB -m /tmp/l8.gguf -p 4096 -n 0 -r 2 -ngl 99 -fa 1 > $L/llama-l8-pp4096.txt 2>&1
echo "l8 pp4096 llama.cpp CUDA: $(t $L/llama-l8-pp4096.txt pp4096)"
echo "t=$SECONDS"; pack
# mat_vec: the m = k = 4096 rows ran 2-3x slower per byte than k = 14336 in every sweep
# (k = 4096 always second). Both orders, q4_0 and q4_K, then the full default sweep if time is left.
if [ $SECONDS -lt 520 ]; then
  mkdir -p $L; VKGRAPH_BENCH_TYPES=q4_0,q4_K VKGRAPH_BENCH_SHAPES=4096x4096,4096x14336 timeout 30 $D/mat_vec > $L/mat_vec-rev.txt 2>&1
  VKGRAPH_BENCH_TYPES=q4_0,q4_K timeout 30 $D/mat_vec > $L/mat_vec-fwd.txt 2>&1
  grep -E "q4_0.*\| 1 \| int8 \| DRAM|copy" $L/mat_vec-rev.txt $L/mat_vec-fwd.txt | cut -c1-120; pack
fi
rm -rf $OUT/logs
