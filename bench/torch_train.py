#!/usr/bin/python3
"""d2l's train_ch6 in PyTorch (Debian's python3-torch), the peer cnnkit train is
measured against: same data files, same recipe (xavier-uniform weights, SGD,
cross-entropy), test accuracy after each epoch, examples/sec at the end.

Usage: /usr/bin/python3 bench/torch_train.py lenet|lenet-relu|alexnet
           [--epochs N] [--batch N] [--lr X] [--threads N] [--steps N] [--resize S]
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from nets import AlexNet, LeNet  # noqa: E402


def lenet_relu():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data, split, resize):
    x = torch.from_numpy(idx(os.path.join(data, split + "-images-idx3-ubyte.gz")).copy())
    y = torch.from_numpy(idx(os.path.join(data, split + "-labels-idx1-ubyte.gz")).astype(np.int64))
    x = x.float().div(255).unsqueeze(1)
    return x, y, resize


def batches(x, y, resize, batch, shuffle):
    order = torch.randperm(len(x)) if shuffle else torch.arange(len(x))
    for i in range(0, len(x), batch):
        sel = order[i:i + batch]
        xb = x[sel]
        if resize:
            xb = F.interpolate(xb, size=(resize, resize), mode="bilinear", align_corners=False)
        yield xb, y[sel]


def d2l_loaders(data, batch, resize):
    """d2l.load_data_fashion_mnist: torchvision's dataset read from the same IDX files
    (unpacked where torchvision looks for them), ToTensor (and Resize), 4 workers."""
    import shutil
    import tempfile

    import torchvision
    from torchvision import transforms
    root = tempfile.mkdtemp()
    raw = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(raw)
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            name = "%s-%s-ubyte" % (split, kind)
            with gzip.open(os.path.join(data, name + ".gz")) as f, open(os.path.join(raw, name), "wb") as g:
                shutil.copyfileobj(f, g)
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    trans = transforms.Compose(trans)
    train = torchvision.datasets.FashionMNIST(root=root, train=True, transform=trans, download=False)
    test = torchvision.datasets.FashionMNIST(root=root, train=False, transform=trans, download=False)
    return (torch.utils.data.DataLoader(train, batch, shuffle=True, num_workers=4),
            torch.utils.data.DataLoader(test, batch, shuffle=False, num_workers=4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--resize", type=int)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--d2l-loader", action="store_true",
                    help="d2l's own pipeline: torchvision's FashionMNIST with ToTensor and a "
                         "DataLoader with 4 workers (needs python3-torchvision)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = {"lenet": LeNet, "lenet-relu": lenet_relu, "alexnet": AlexNet}[a.model]()
    alex = a.model == "alexnet"
    lr = a.lr if a.lr is not None else {"lenet": 0.9, "lenet-relu": 0.1, "alexnet": 0.01}[a.model]
    batch = a.batch or (128 if alex else 256)
    resize = a.resize if a.resize is not None else (224 if alex else 0)

    def init(m):
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    net.apply(init)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    xtr, ytr, _ = load(a.data, "train", resize)
    xte, yte, _ = load(a.data, "t10k", resize)
    if a.d2l_loader:
        train_iter, test_iter = d2l_loaders(a.data, batch, resize)
        global batches
        batches = lambda x, y, r, b, shuffle: train_iter if shuffle else test_iter  # noqa: E731
    print("training %s: %d images, %d epochs, batch %d, lr %g, %d threads"
          % (a.model, len(xtr), a.epochs, batch, lr, a.threads), flush=True)
    train_time, seen, step, start = 0.0, 0, 0, time.time()
    for epoch in range(a.epochs):
        net.train()
        tl, tc, tn = 0.0, 0, 0
        for xb, yb in batches(xtr, ytr, resize, batch, True):
            t0 = time.time()
            opt.zero_grad()
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            train_time += time.time() - t0
            tl += loss.item() * len(yb)
            tc += (out.argmax(1) == yb).sum().item()
            tn += len(yb)
            seen += len(yb)
            step += 1
            if a.steps:
                print("step %d loss %.4f" % (step, loss.item()), flush=True)
                if step >= a.steps:
                    break
        if a.steps and step >= a.steps:
            break
        net.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in batches(xte, yte, resize, batch, False):
                correct += (net(xb).argmax(1) == yb).sum().item()
        print("epoch %d loss %.3f, train acc %.3f, test acc %.3f"
              % (epoch + 1, tl / tn, tc / tn, correct / len(xte)), flush=True)
    print("%.1f examples/sec on cpu (%d threads)" % (seen / train_time, a.threads))
    print("wall %.1f s" % (time.time() - start))


if __name__ == "__main__":
    main()
