# Call 2c (twentieth session, same warm machine right after call 2b; inline command, kept
# here as run): ROPE_ATTENTION per stage and per node at positions 25 / 521 / 2,057, M
# (f1c0725) against N (8b25b71), two rounds.
L=$OUT/logs; mkdir -p $L; D=/tmp/dev/device; export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VKGRAPH_REQUIRE_VULKAN=1; for r in 1 2; do for b in M N; do B=$D/vkgraph; [ $b = M ] && B=/tmp/vkgraph-M; for m in q06 l8; do timeout 60 $B bench -m /tmp/$m.gguf -p 0 -n 16 -d 0,512,2048 -r 1 --qkv auto --profile > $L/p$r-$b-$m.txt 2>&1; echo "p$r $b $m: $(grep -E 'ROPE_ATTENTION' $L/p$r-$b-$m.txt | awk -F'|' '{printf "%s ", $5}')"; done; done; done; cd $OUT && tar czf logs.tgz logs && rm -rf logs
