L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR); V=$D/vkgraph
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
(cd $man && timeout 100 $D/vk_attention --test-threads 1 > $L/vk_attention.txt 2>&1; echo "vk_attention rc=$?"; grep "test result" $L/vk_attention.txt)
(cd $man && timeout 200 $D/vk_ops --ignored perf --nocapture > $L/perf.txt 2>&1); grep attention $L/perf.txt | sed 's/\[Vulkan\/NVIDIA H200\] //'
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
