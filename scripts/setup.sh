#!/usr/bin/env bash
# setup.sh - installs the Debian packages cnnkit needs to build and test.
# Idempotent: installs only what is missing. Run as root on Debian 12.
set -euo pipefail

packages=(
    build-essential cmake pkg-config  # toolchain
    libopenblas-dev                   # SGEMM for Conv2d and Linear
    libcjson-dev                      # safetensors headers, --json output
    libcmocka-dev                     # C unit tests
    python3-torch python3-numpy       # the reference the tests compare against
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#packages[@]} packages present"
    exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo "setup: done"
