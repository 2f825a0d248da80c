#!/usr/bin/env bash
# main.sh - sets up, builds and runs cnnkit's main job: the zoo, each model's
# summary with the shape arithmetic explained, LeNet's forward pass with
# PyTorch-written weights, compared with PyTorch's own output, and the README's
# figures (docs/img/*.svg) drawn from the models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
set -x
build/cnnkit zoo
build/cnnkit print lenet
build/cnnkit summary lenet --explain
build/cnnkit summary alexnet --explain
build/cnnkit run lenet --weights tests/fixtures/lenet.weights.safetensors \
    --input tests/fixtures/lenet.io.safetensors -o build/lenet.output.safetensors
build/tests/stdiff build/lenet.output.safetensors output tests/fixtures/lenet.io.safetensors output 1e-4
build/cnnkit draw lenet -o docs/img/lenet.svg
build/cnnkit draw lenet alexnet -o docs/img/lenet_vs_alexnet.svg
build/cnnkit draw lenet --style graph -o docs/img/lenet_graph.svg
build/cnnkit draw lenet --style planes -o docs/img/lenet_planes.svg
