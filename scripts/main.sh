#!/usr/bin/env bash
# main.sh - sets up, builds and runs cnnkit's main job: the zoo and LeNet's
# summary with the shape arithmetic explained, LeNet's forward pass with
# PyTorch-written weights compared with PyTorch's own output, the README's
# figures drawn from the models, and LeNet trained on Fashion-MNIST with d2l's
# recipe: its training curve, its evaluation and a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
set -x
build/cnnkit zoo
build/cnnkit summary lenet --explain
build/cnnkit summary alexnet --trace
build/cnnkit run lenet --weights tests/fixtures/lenet.weights.safetensors \
    --input tests/fixtures/lenet.io.safetensors -o build/lenet.output.safetensors
build/tests/stdiff build/lenet.output.safetensors output tests/fixtures/lenet.io.safetensors output 1e-4
build/cnnkit draw lenet -o docs/img/lenet.svg
build/cnnkit draw lenet alexnet -o docs/img/lenet_vs_alexnet.svg
build/cnnkit draw lenet --style graph -o docs/img/lenet_graph.svg
build/cnnkit draw lenet --style planes -o docs/img/lenet_planes.svg
build/cnnkit train lenet -o build/lenet.safetensors --plot docs/img/lenet_training.svg \
    --log build/lenet.csv
build/cnnkit eval lenet --weights build/lenet.safetensors
# The first test image (an ankle boot) as a picture file, then its prediction.
gzip -dc /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz >build/t10k-images.idx
{ printf 'P5\n28 28\n255\n'; dd if=build/t10k-images.idx bs=784 count=1 iflag=skip_bytes skip=16 \
    status=none; } >docs/img/sample.pgm
build/cnnkit predict lenet --weights build/lenet.safetensors docs/img/sample.pgm
