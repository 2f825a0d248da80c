#!/usr/bin/env bash
# test_alexnet.sh CNNKIT STDIFF REFDIR WORKDIR - AlexNet parity: PyTorch writes
# weights, an input and its output at test time (187 MB, never committed);
# `cnnkit run` must match. Skips (77) where Debian's python3-torch is missing.
set -u
cnnkit=$1 stdiff=$2 ref=$3 work=$4
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "skipped: $py has no torch (apt-get install python3-torch)"
    exit 77
fi
# Batch 1 runs every convolution as im2col + one product and the Linear
# layers as matrix-vector products; batch 2 runs conv2 by Winograd's
# F(4x4, 5x5); at batch 8 conv3-5 have enough outputs for F(4x4, 3x3) too
# (see src/op_conv2d.c and src/op_linear.c).
for batch in 1 2 8; do
    rm -rf "$work" && mkdir -p "$work"
    "$py" "$ref/make_alexnet.py" "$work" --batch $batch || exit 1
    "$cnnkit" run alexnet --weights "$work/alexnet.weights.safetensors" \
        --input "$work/alexnet.io.safetensors" -o "$work/y.safetensors" || exit 1
    # AlexNet's outputs are about 1e-2 in size: hold them to 1e-4 as the issue
    # asks, and also to 1e-5, which is what a faithful implementation reaches.
    "$stdiff" "$work/y.safetensors" output "$work/alexnet.io.safetensors" output 1e-4 || exit 1
    "$stdiff" "$work/y.safetensors" output "$work/alexnet.io.safetensors" output 1e-5 || exit 1
done
rm -rf "$work"
