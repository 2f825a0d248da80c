#!/usr/bin/python3
"""PyTorch (Debian's python3-torch) side of bench/run.sh: images/s for
inference or a training step of LeNet/AlexNet on random data, after warm-up,
measured like `cnnkit bench`. Prints one JSON object.

Usage: /usr/bin/python3 bench/torch_bench.py MODEL BATCH [--train] [--threads N]
           [--seconds S] [--size S]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from nets import AlexNet, LeNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("batch", type=int)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = {"lenet": LeNet, "alexnet": AlexNet}[a.model]()
    size = a.size or (224 if a.model == "alexnet" else 28)
    x = torch.rand(a.batch, 1, size, size)
    y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.SGD(net.parameters(), lr=1e-4)

    def step():
        if a.train:
            net.train()
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        else:
            net.eval()
            with torch.no_grad():
                net(x)

    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= a.seconds and n >= 3:
            break
    print(json.dumps({"peer": "pytorch " + torch.__version__, "images_per_second": a.batch * n / dt,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
