#!/usr/bin/python3
"""Loads a LeNet state_dict that cnnkit wrote (strict load_state_dict) and prints
its accuracy on the first N Fashion-MNIST test images, as cnnkit eval does.

Usage: /usr/bin/python3 tests/ref/torch_eval.py WEIGHTS.safetensors DATADIR N
"""
import gzip
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from nets import LeNet  # noqa: E402


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    weights, data, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = LeNet()
    _, tensors = st.load_file(weights)
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.from_numpy(idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"))[:n].copy())
    y = torch.from_numpy(idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz"))[:n].astype(np.int64))
    with torch.no_grad():
        pred = model(x.float().div(255).unsqueeze(1)).argmax(1)
    print("%.4f" % (pred == y).float().mean().item())


if __name__ == "__main__":
    main()
