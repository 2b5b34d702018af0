#!/usr/bin/env bash
# The core binary, stripped, must stay at most 5 MB (ARCHITECTURE.md §2).
set -euo pipefail
bin=${1:-build/shimmy}
limit=$((5 * 1000 * 1000))
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
strip -o "$tmp" "$bin"
size=$(stat -c %s "$tmp")
echo "stripped $(basename "$bin"): $size bytes (limit $limit)"
if [ "$size" -gt "$limit" ]; then
  echo "FAIL: the stripped core binary is larger than 5 MB" >&2
  exit 1
fi
if ldd "$bin" | grep -qiE 'libcuda|libcudart|libcublas'; then
  echo "FAIL: the core binary links a CUDA library" >&2
  exit 1
fi
