#!/usr/bin/env bash
# Installs what vkgraph needs on a fresh Debian 12 machine: the Vulkan loader, Mesa's
# lavapipe (a CPU Vulkan device, so everything runs without a GPU), the Khronos
# validation layer (the tests run under it), cmake/ninja/python3 for the shaderc
# source build, python3-jinja2 (tests compare chat templates with it) and the openai
# Python client (tests drive the server with it).
# Idempotent; uses sudo when not root.
set -euo pipefail
pkgs=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers vulkan-tools cmake ninja-build python3 python3-pip python3-jinja2 curl unzip git build-essential)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The `openai` Python client (tests drive `vkgraph serve` with it).
if ! python3 -c "import openai" >/dev/null 2>&1; then
  python3 -m pip install -q openai 2>/dev/null \
    || python3 -m pip install -q --user --break-system-packages openai
fi
if ! command -v cargo >/dev/null 2>&1; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
