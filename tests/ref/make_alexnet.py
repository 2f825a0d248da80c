#!/usr/bin/python3
"""Generate AlexNet reference weights and I/O at test time (not committed,
~187 MB).

Usage: /usr/bin/python3 tests/ref/make_alexnet.py OUTDIR [--batch B]
Writes OUTDIR/alexnet.weights.safetensors (state_dict, metadata repr) and
OUTDIR/alexnet.io.safetensors (input [B,1,224,224] from torch.rand, output).
"""
import argparse
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep the source tree clean

from make_fixtures import write_model  # noqa: E402
from nets import AlexNet  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args(argv[1:])
    if args.batch < 1:
        ap.error("--batch must be >= 1")
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = AlexNet()
    x = torch.rand(args.batch, 1, 224, 224)
    y = write_model(args.outdir, "alexnet", model, x)
    print("alexnet input %s output %s" % (list(x.shape), list(y.shape)))


if __name__ == "__main__":
    main(sys.argv)
