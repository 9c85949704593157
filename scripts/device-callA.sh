cd "$(dirname "$0")/.."; mkdir -p $OUT/logs; L=$OUT/logs
(bash .anchor/anchor-build.sh > $L/anchor.txt 2>&1; echo ANCHOR_DONE >> $L/anchor.txt) &
bash scripts/device-run.sh tests bench-kernels 2>&1 | tail -20
V=/tmp/dev/device/vkgraph
$V devices > $L/e2e.txt 2>&1
$V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf >> $L/e2e.txt 2>&1
$V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf >> $L/e2e.txt 2>&1
for m in /tmp/q06.gguf /tmp/l8.gguf; do
  for mm in 1 0; do echo "== $m VKGRAPH_MMVQ=$mm" >> $L/e2e.txt
    VKGRAPH_MMVQ=$mm timeout 150 $V bench -m $m -p 512 -n 128 -d 0,4096 -r 3 --qkv auto >> $L/e2e.txt 2>&1; done; done
wait
for m in /tmp/q06.gguf /tmp/l8.gguf; do timeout 120 /tmp/ll/build/bin/llama-bench -m $m -p 512 -n 128 -d 0,4096 -r 3 -ngl 99 -fa 1 >> $L/e2e.txt 2>&1; done
tail -3 $L/anchor.txt
