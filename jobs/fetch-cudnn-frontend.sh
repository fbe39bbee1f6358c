#!/usr/bin/env bash
# Fetches NVIDIA's cudnn-frontend (header-only C++ API of cuDNN's graph
# backend, MIT licence) from PyPI into .deps/cudnn-frontend/include, where the
# Makefile finds it.  The CUDA backend uses it for cuDNN's flash attention
# when cuDNN's own headers and library are found too.  Called by `make`
# (target deps) when nvcc and cuDNN are present; does nothing when the headers
# are already there.  Offline machines: copy the folder from another machine,
# or point the build at a copy with `make CUDNN_FRONTEND=dir/include`.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.32.0
WHEEL=nvidia_cudnn_frontend-$VERSION-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
URL=https://files.pythonhosted.org/packages/11/02/660e2dd9f9d9f940e1641443771730612c3aadaafbc5ef7a93cc313d519d/$WHEEL
SHA256=c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0
DEST=.deps/cudnn-frontend

if [ -f "$DEST/include/cudnn_frontend.h" ] && [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-cudnn-frontend: downloading cudnn-frontend $VERSION (headers for cuDNN flash attention)"
if ! curl -fsSL --retry 3 -o "$tmp/$WHEEL" "$URL"; then
  echo "fetch-cudnn-frontend: could not download $URL; building without cuDNN attention" \
       "(copy $DEST from a machine with network, or make CUDNN=0 to silence this)" >&2
  exit 1
fi
if ! echo "$SHA256  $tmp/$WHEEL" | sha256sum -c --status; then
  echo "fetch-cudnn-frontend: $WHEEL does not match its SHA-256; not using it" >&2
  exit 1
fi
unzip -q "$tmp/$WHEEL" 'include/*' -d "$tmp/x"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/x" "$DEST"
echo "$VERSION" >"$DEST/VERSION"
echo "fetch-cudnn-frontend: headers in $DEST/include"
