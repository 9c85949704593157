cd "$(dirname "$0")/.."; mkdir -p $OUT/logs; L=$OUT/logs
bash scripts/device-run.sh tests bench-kernels 2>&1 | tail -16
V=/tmp/dev/device/vkgraph
$V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_0 -o /tmp/q06.gguf > $L/e2e.txt 2>&1
$V gen-model --arch qwen3 --preset qwen3-0.6b --quant q2_k -o /tmp/q06k2.gguf >> $L/e2e.txt 2>&1
$V gen-model --arch qwen3 --preset qwen3-0.6b --quant q4_k_m -o /tmp/q06k4.gguf >> $L/e2e.txt 2>&1
$V gen-model --arch llama --preset llama-8b --quant q4_0 -o /tmp/l8.gguf >> $L/e2e.txt 2>&1
for mm in 1 0; do echo "== VKGRAPH_MMVQ=$mm" >> $L/e2e.txt
  VKGRAPH_MMVQ=$mm timeout 100 $V bench -m /tmp/q06.gguf -m /tmp/l8.gguf -p 512 -n 128 -d 0,4096 -r 3 --qkv auto >> $L/e2e.txt 2>&1
  VKGRAPH_MMVQ=$mm timeout 60 $V bench -m /tmp/q06k2.gguf -m /tmp/q06k4.gguf -p 0 -n 128 -r 3 --qkv auto >> $L/e2e.txt 2>&1
done
VKGRAPH_MMVQ=1 timeout 60 $V bench -m /tmp/q06.gguf -p 0 -n 16 -r 1 --qkv auto --profile > $L/profile.txt 2>&1
timeout 60 $V run -m /tmp/q06.gguf -p "Hello" -n 128 >> $L/e2e.txt 2>&1 | tail -3
tail -40 $L/e2e.txt | grep -E "tg|pp|t/s"
