# Call 4 (twenty-first session; calls 2 / 3 were never started — refused starts spent the
# device time they needed — and this one does their work in one command):
# F = main 8a2ae35 (target/device.tar.xz: the fence polled 20 ms before a blocking wait; logits lent without a copy;
# split-K decode attention with at most 2 heads per workgroup and V / K preloaded),
# N = main b343d5b (target/vkgraph-N.xz: the session's start). Every GPU test binary of F
# (scripts/device-run.sh tests) while llama.cpp 0c1e570 CUDA builds (niced), then F and N
# beside llama-bench: tg128 / pp512, depth 0 / 2,048 / 4,096, F's tg128+s.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
(nice -n 15 bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1) &
AP=$!
bash scripts/device-run.sh tests > $L/tests-summary.txt 2>&1; grep "rc=" $L/tests-summary.txt | tr '\n' ' '; echo "(t=$SECONDS)"; pack
grep -E "FAILED|panicked" $L/tests.txt | head -5
D=/tmp/dev/device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
$D/vkgraph devices > $L/devices.txt 2>&1; grep -iE "^\[0\]|driver" $L/devices.txt | head -2
xz -dc target/vkgraph-N.xz > /tmp/vkgraph-N && chmod +x /tmp/vkgraph-N
bin() { [ $1 = N ] && echo /tmp/vkgraph-N || echo $D/vkgraph; }
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  [ -f /tmp/$3.gguf ] || $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1
echo "t=$SECONDS wait anchor"; wait $AP; tail -1 $L/anchor.txt
t() { grep -E "$2" $1 | grep -v speedup | awk -F'|' '{printf "%s %s; ", $(NF-2), $(NF-1)}'; }
LB=/tmp/ll/build/bin/llama-bench
for m in q06 l8; do
  timeout 60 $LB -m /tmp/$m.gguf -p 512 -n 128 -r 3 -ngl 99 -fa 1 > $L/llama-$m-tg128.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m-tg128.txt 'pp512|tg128') (t=$SECONDS)"
  for b in N F; do
    timeout 50 $(bin $b) bench -m /tmp/$m.gguf -p 512 -n 128 -r 3 --qkv auto > $L/tg128-$b-$m.txt 2>&1
    echo "$b $m: $(t $L/tg128-$b-$m.txt 'pp512|tg128') (t=$SECONDS)"
  done; pack
done
for m in q06 l8; do
  timeout 100 $LB -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 -ngl 99 -fa 1 > $L/llama-$m-depth.txt 2>&1
  echo "$m llama.cpp CUDA: $(t $L/llama-$m-depth.txt 'tg64') (t=$SECONDS)"
  timeout 70 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 --qkv auto > $L/d-F-$m.txt 2>&1
  echo "F $m: $(t $L/d-F-$m.txt tg64) (t=$SECONDS)"; pack
done
for m in q06 l8; do
  timeout 60 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto --sampled > $L/sampled-F-$m.txt 2>&1
  echo "F $m: $(t $L/sampled-F-$m.txt 'tg128') (t=$SECONDS)"
done
timeout 40 $D/vkgraph bench -m /tmp/q06.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/profile-F-q06.txt 2>&1
grep -E "^wall" $L/profile-F-q06.txt | cut -c1-200
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
