#!/usr/bin/env bash
# run.sh [--quick] [--json FILE] [--rounds N] - builds cnnkit in release mode and measures it
# against PyTorch (Debian python3-torch) and ONNX Runtime (npm onnxruntime-node) in one run,
# alternating, on this machine. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCNNKIT_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" --target cnnkit_cli >/dev/null
cc -O2 -march=native -fopenmp bench/peak.c -o build-bench/peak
exec /usr/bin/python3 bench/run.py --cnnkit build-bench/cnnkit --peak build-bench/peak "$@"
