# Call 5 (2026-12-02): the final main (CI's build of 1545cca) on the H200: serve (incl.
# --context-shift), kv_shift, model_vulkan, vk_runtime, vk_mul_mat coopmat, layer_split.
L=$OUT/logs; mkdir -p $L
pack() { (cd $OUT && tar czf logs.tgz logs); }
bash scripts/device-run.sh > /dev/null 2>&1
D=/tmp/dev/device; man=$(cat $D/MANIFEST_DIR)
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1 VKGRAPH_EXPECT_COOPMAT=1
for t in serve kv_shift model_vulkan vk_runtime layer_split; do
  (cd $man && timeout 100 $D/$t --test-threads 1 --skip the_openai_python_client_works_against_the_server > $L/t-$t.txt 2>&1; echo "$t rc=$? $(grep 'test result' $L/t-$t.txt | tail -1 | cut -c1-40)")
done
(cd $man && timeout 60 $D/vk_mul_mat --test-threads 1 coopmat > $L/t-vk_mul_mat.txt 2>&1; echo "vk_mul_mat coopmat rc=$? $(grep 'test result' $L/t-vk_mul_mat.txt | cut -c1-40)")
echo "t=$SECONDS"; pack; rm -rf $OUT/logs
