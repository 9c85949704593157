#!/usr/bin/env bash
# The main job: set-up, build, fetch SmolLM2-135M-Instruct once, generate on the GPU
# (or lavapipe when there is none). Extra arguments go to `vkgraph run`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vkgraph-target}"
cargo build --release --quiet
./scripts/fetch-smollm2.sh >/dev/null
exec "$CARGO_TARGET_DIR/release/vkgraph" run -p "${PROMPT:-The capital of France is}" -n "${N:-32}" --temp 0 "$@"
