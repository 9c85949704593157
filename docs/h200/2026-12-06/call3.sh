# Call 3 (2026-12-06, same warm H100): per-op profile of a qwen3-30b-a3b q4_0 decode step,
# the assignment dump of the q2_k file at 512 tokens (trimmed here to its decisions,
# kernels and summary), and the qkv off/auto A/B on the q4_0 file.
L=$OUT/logs; mkdir -p $L; D=/tmp/dev/device; V=$D/vkgraph; export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; timeout 100 $V bench -m /tmp/q30-q4_0.gguf -p 512 -n 32 -r 1 --qkv auto --profile > $L/profile-q30.txt 2>&1; timeout 60 $V dump -m /tmp/q30-q2_k.gguf --qkv auto -n 512 > $L/dump-q30-q2k.txt 2>&1; timeout 60 $V bench -m /tmp/q30-q4_0.gguf -p 512 -n 128 -r 3 --qkv off,auto > $L/ab-q30.txt 2>&1; grep -E "pp512|tg128" $L/ab-q30.txt; head -c 3000 $L/profile-q30.txt; (cd $OUT && tar czf logs.tgz logs && rm -rf logs)
