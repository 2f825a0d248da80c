#!/usr/bin/env bash
# setup.sh - installs the Debian packages cnnkit needs to build and test.
# Idempotent: installs only what is missing. Run as root on Debian 12.
set -euo pipefail

packages=(
    build-essential cmake pkg-config  # toolchain
    libopenblas-openmp-dev            # SGEMM for Conv2d and Linear, on OpenMP's threads
    libcjson-dev                      # safetensors headers, --json output
    libcmocka-dev                     # C unit tests
    clang libclang-rt-14-dev libomp-dev  # fuzz/run.sh: libFuzzer targets, built with clang
    zlib1g-dev libpng-dev             # IDX files (gzip), PNG pictures for predict
    dataset-fashion-mnist             # the default training data
    python3-torch python3-numpy       # the reference the tests compare against
    libprotobuf-c-dev protobuf-c-compiler libonnx-dev  # ONNX export: protobuf-c, onnx.proto
    python3-onnx                      # the ONNX checker and shape inference in the tests
    librsvg2-dev fonts-dejavu-core    # draw: PNG through librsvg and cairo, the figures' font
    librsvg2-bin libxml2-utils        # draw tests: rsvg-convert renders, xmllint parses
    libopenmpi-dev openmpi-bin        # data-parallel training under mpirun
)
# Node.js runs ONNX Runtime in the ONNX tests; a machine that already has node
# and npm (e.g. NodeSource's nodejs) keeps them.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#packages[@]} packages present"
else
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "setup: done"
fi

# ONNX Runtime for the ONNX tests: npm's onnxruntime-node as pinned by
# tests/ort/package-lock.json. --ignore-scripts: the CPU library ships inside
# the package; its install script only fetches optional CUDA libraries.
ort=$(cd "$(dirname "$0")/.." && pwd)/tests/ort
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
    echo "setup: npm ci --ignore-scripts in tests/ort"
    npm ci --ignore-scripts --no-audit --no-fund --prefix "$ort" >/dev/null
fi
