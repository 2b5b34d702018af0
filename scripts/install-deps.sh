#!/usr/bin/env bash
# Installs shimmy's build and test prerequisites on Debian 12 with apt-get.
# Idempotent and quiet: prints nothing and touches nothing when all are present.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev clang-format
      nlohmann-json3-dev libcli11-dev libpcre2-dev libcpp-httplib-dev
      libgtest-dev libgmock-dev libbenchmark-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
