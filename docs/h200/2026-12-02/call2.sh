# Call 2 (2026-12-02): prefill kernel sweep of the uvec4-shared / lean-B experiments with
# pipeline statistics, and their correctness test (vk_mul_mat mul_mat_coopmat_tiles).
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
(cd $man && timeout 150 $D/vk_mul_mat --test-threads 1 coopmat > $L/vk_mul_mat.txt 2>&1; echo "vk_mul_mat coopmat rc=$? $(grep 'test result' $L/vk_mul_mat.txt)"); grep -E "FAIL|panicked|nmse" $L/vk_mul_mat.txt | head -5
(cd $man && VKGRAPH_PIPELINE_STATS=1 timeout 150 $D/prefill > $L/prefill.txt 2>&1); grep -E "coopmat" $L/prefill.txt | grep -E "q4_0|f16|q4_K" | grep -v pipeline | cut -c1-90; grep -E "^pipeline mul_mat_coopmat_(q4_0|f16)" $L/prefill.txt | cut -c1-200
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
