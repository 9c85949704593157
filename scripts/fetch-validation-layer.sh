#!/usr/bin/env bash
# Puts Debian 13's Khronos validation layer (1.4.309), its loader and the glibc/libstdc++
# it needs into .vvl/ (git-ignored) for validated runs on the H200: Debian 12's layer
# (1.3.239) rejects the NV cooperative-matrix-2 feature structs that the H200 device
# is created with. scripts/device-run.sh `validated` runs the test binaries under this
# glibc's ld.so. Run once per checkout; needs network.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
grep -qx '/.vvl/' .git/info/exclude 2>/dev/null || echo '/.vvl/' >> .git/info/exclude
lists=/tmp/trixie-lists; etc=/tmp/trixie-etc; mkdir -p "$lists/partial" "$etc" .vvl
echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' > "$etc/sources.list"
o=(-oAPT::Architecture=amd64 -oDir::State::Lists=$lists -oDir::Etc::SourceList=$etc/sources.list -oDir::Etc::SourceParts=/dev/null)
apt-get "${o[@]}" update -qq
(cd .vvl && apt-get "${o[@]}" download vulkan-validationlayers/trixie libvulkan1/trixie \
   libc6/trixie libstdc++6/trixie libgcc-s1/trixie 2>&1 | grep -v unsandboxed || true)
ls .vvl
