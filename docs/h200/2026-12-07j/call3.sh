# Call 3 (twenty-first session, same machine as call 2, right after): F = main c6ce71c
# (target/device.tar.xz), N = main b343d5b (target/vkgraph-N.xz: the session's start)
# beside llama.cpp 0c1e570 CUDA's llama-bench (built in call 2): tg128 / pp512, depth
# 0 / 2,048 / 4,096, F's tg128+s (the default sampler, as `vkgraph run`), F's profiles.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tmp logs && mv logs.tmp logs.tgz); }
D=/tmp/dev/device
[ -x $D/vkgraph ] || bash scripts/device-run.sh > /dev/null 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1
xz -dc target/vkgraph-N.xz > /tmp/vkgraph-N && chmod +x /tmp/vkgraph-N
bin() { [ $1 = N ] && echo /tmp/vkgraph-N || echo $D/vkgraph; }
(for m in "qwen3 qwen3-0.6b q06" "llama llama-8b l8"; do set -- $m
  [ -f /tmp/$3.gguf ] || $D/vkgraph gen-model --arch $1 --preset $2 --quant q4_0 -o /tmp/$3.gguf; done) > $L/gen.txt 2>&1
[ -x /tmp/ll/build/bin/llama-bench ] || bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1
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
  for b in N F; do
    timeout 70 $(bin $b) bench -m /tmp/$m.gguf -p 0 -n 64 -d 0,2048,4096 -r 2 --qkv auto > $L/d-$b-$m.txt 2>&1
    echo "$b $m: $(t $L/d-$b-$m.txt tg64) (t=$SECONDS)"
  done; pack
done
for m in q06 l8; do
  timeout 60 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 128 -r 3 --qkv auto --sampled > $L/sampled-F-$m.txt 2>&1
  echo "F $m: $(t $L/sampled-F-$m.txt 'tg128') (t=$SECONDS)"
done; pack
for m in q06 l8; do
  timeout 60 $D/vkgraph bench -m /tmp/$m.gguf -p 0 -n 16 -d 0,4096 -r 1 --qkv auto --profile > $L/profile-F-$m.txt 2>&1
  grep -E "^### |^wall|ROPE_ATTENTION" $L/profile-F-$m.txt | cut -c1-160
done
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
