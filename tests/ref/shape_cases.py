#!/usr/bin/python3
"""Generate tests/fixtures/shape_cases.json: shape-inference cases whose
expectations come from PyTorch itself.

Usage: /usr/bin/python3 tests/ref/shape_cases.py [OUT.json]
(OUT defaults to tests/fixtures/shape_cases.json next to this script.)

Each case is one layer, built as torch.nn.<layer>(**args), run in eval mode
under torch.no_grad() on torch.zeros(input). It records
  {"layer", "args", "input", "output": shape}           when PyTorch ran it,
  {"layer", "args", "input", "error": first line}       when the call raised,
  {..., "error": first line, "construct_error": true}   when the constructor raised,
and, for ceil_mode pooling cases, a "note" saying whether the last window was
dropped because it would start in the right padding. Args are keyword
arguments; tuples are written as lists.
"""
import json
import os
import sys

import torch
from torch import nn

# ---- The cases: (layer, args, input shape) --------------------------------

CASES = []


def case(layer, args, shape):
    CASES.append((layer, args, list(shape)))


def conv(args, shape):
    case("Conv2d", args, shape)


# Conv2d: basics, strides, paddings, non-square kernels, dilation.
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, [1, 3, 7, 7])
conv({"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2}, [2, 1, 28, 28])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2}, [1, 3, 8, 8])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1},
     [1, 3, 9, 9])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": [3, 5], "stride": [1, 2],
      "padding": [1, 0]}, [1, 3, 10, 11])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "dilation": 2}, [1, 3, 9, 9])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "dilation": [2, 3],
      "padding": [2, 1], "stride": 2}, [1, 3, 11, 13])
conv({"in_channels": 3, "out_channels": 5, "kernel_size": 1, "bias": False}, [4, 3, 2, 3])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 2, "padding": 3}, [1, 3, 1, 1])
conv({"in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 5}, [1, 1, 3, 3])
# Kernel exactly the padded input; kernel larger than the padded input.
conv({"in_channels": 1, "out_channels": 2, "kernel_size": 5, "padding": 1}, [1, 1, 3, 3])
conv({"in_channels": 1, "out_channels": 2, "kernel_size": 5}, [1, 1, 4, 4])
conv({"in_channels": 1, "out_channels": 2, "kernel_size": 5, "padding": 1}, [1, 1, 2, 8])
conv({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "dilation": 3}, [1, 1, 6, 6])
conv({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "dilation": 3}, [1, 1, 7, 7])
# Groups, depthwise.
conv({"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8},
     [2, 8, 6, 6])
conv({"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 4}, [1, 4, 5, 5])
conv({"in_channels": 6, "out_channels": 9, "kernel_size": [3, 1], "groups": 3},
     [1, 6, 5, 5])
# Channel mismatch (with and without groups), wrong rank.
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, [1, 2, 7, 7])
conv({"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2}, [1, 2, 7, 7])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, [3, 7])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, [1, 1, 3, 7, 7])
# Bad attributes: constructor errors (groups) and call errors (stride, padding).
conv({"in_channels": 3, "out_channels": 6, "kernel_size": 3, "groups": 2}, [1, 3, 7, 7])
conv({"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}, [1, 4, 7, 7])
conv({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 0}, [1, 4, 7, 7])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 0}, [1, 3, 7, 7])
conv({"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": -1}, [1, 3, 7, 7])
# The AlexNet first layer (paper version: no padding) on 224, 227 and 448.
for side in (224, 227, 448):
    conv({"in_channels": 3, "out_channels": 96, "kernel_size": 11, "stride": 4},
         [1, 3, side, side])
# torchvision's AlexNet first layer (padding=2) on 224.
conv({"in_channels": 3, "out_channels": 64, "kernel_size": 11, "stride": 4, "padding": 2},
     [1, 3, 224, 224])

# MaxPool2d and AvgPool2d: floor mode, strides, non-square, padding.
for layer in ("MaxPool2d", "AvgPool2d"):
    case(layer, {"kernel_size": 2}, [1, 3, 7, 7])
    case(layer, {"kernel_size": 3, "stride": 2}, [1, 2, 13, 13])
    case(layer, {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 1]}, [1, 2, 6, 7])
# ceil_mode: the last-window-starts-in-padding rule (see the notes in the JSON).
for layer in ("MaxPool2d", "AvgPool2d"):
    case(layer, {"kernel_size": 2, "ceil_mode": True}, [1, 1, 7, 7])      # odd, kept
    case(layer, {"kernel_size": 2, "ceil_mode": True}, [1, 1, 8, 8])      # even, exact
    case(layer, {"kernel_size": 3, "stride": 2, "ceil_mode": True}, [1, 1, 6, 6])
    case(layer, {"kernel_size": 3, "stride": 3, "padding": 1, "ceil_mode": True},
         [1, 1, 5, 5])                                                   # dropped
    case(layer, {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True},
         [1, 1, 4, 4])                                                   # dropped
    case(layer, {"kernel_size": 1, "stride": 3, "ceil_mode": True}, [1, 1, 5, 5])  # dropped
    case(layer, {"kernel_size": 2, "stride": 4, "ceil_mode": True}, [1, 1, 7, 6])  # h dropped
    case(layer, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
         [1, 1, 8, 9])
case("AvgPool2d", {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True,
                   "count_include_pad": False}, [1, 2, 4, 4])
# MaxPool2d with dilation.
case("MaxPool2d", {"kernel_size": 3, "stride": 1, "dilation": 2}, [1, 1, 9, 9])
case("MaxPool2d", {"kernel_size": 2, "stride": 2, "dilation": [2, 1], "ceil_mode": True},
     [1, 1, 8, 7])
case("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2}, [1, 1, 10, 10])
case("MaxPool2d", {"kernel_size": 3, "dilation": 3}, [1, 1, 6, 6])
# Padding above half the kernel (checked against the undilated kernel).
case("MaxPool2d", {"kernel_size": 3, "padding": 2}, [1, 1, 8, 8])
case("AvgPool2d", {"kernel_size": 2, "padding": 2}, [1, 1, 8, 8])
case("MaxPool2d", {"kernel_size": 3, "padding": 2, "dilation": 2}, [1, 1, 9, 9])
case("MaxPool2d", {"kernel_size": [3, 5], "padding": [1, 2]}, [1, 1, 6, 6])
case("AvgPool2d", {"kernel_size": [3, 5], "padding": [2, 1]}, [1, 1, 6, 6])
# Output size too small.
case("MaxPool2d", {"kernel_size": 3}, [1, 1, 2, 2])
case("AvgPool2d", {"kernel_size": 4, "stride": 1}, [1, 1, 3, 8])
case("MaxPool2d", {"kernel_size": 3, "dilation": 2}, [1, 1, 4, 9])
# Stride zero, wrong rank.
case("MaxPool2d", {"kernel_size": 2, "stride": 0}, [1, 1, 4, 4])
case("MaxPool2d", {"kernel_size": 2}, [4, 4])
case("MaxPool2d", {"kernel_size": 2}, [1, 1, 1, 4, 4])

# AdaptiveAvgPool2d.
case("AdaptiveAvgPool2d", {"output_size": 1}, [2, 3, 7, 7])
case("AdaptiveAvgPool2d", {"output_size": [6, 6]}, [1, 2, 13, 13])
case("AdaptiveAvgPool2d", {"output_size": [2, 3]}, [1, 2, 5, 7])
case("AdaptiveAvgPool2d", {"output_size": 5}, [1, 2, 3, 2])
case("AdaptiveAvgPool2d", {"output_size": [4, 1]}, [1, 1, 1, 1])
case("AdaptiveAvgPool2d", {"output_size": 2}, [5, 5])

# Linear.
case("Linear", {"in_features": 10, "out_features": 5}, [2, 10])
case("Linear", {"in_features": 10, "out_features": 5}, [10])
case("Linear", {"in_features": 10, "out_features": 5, "bias": False}, [2, 3, 10])
case("Linear", {"in_features": 7, "out_features": 2}, [1, 3, 2, 7])
case("Linear", {"in_features": 10, "out_features": 5}, [2, 9])
case("Linear", {"in_features": 147, "out_features": 10}, [1, 3, 7, 7])

# Activations keep the shape, whatever the rank.
case("ReLU", {}, [1, 3, 7, 7])
case("Sigmoid", {}, [5])
case("ReLU", {}, [2, 3, 4, 5, 6])
case("Tanh", {}, [2, 3])

# Flatten.
case("Flatten", {}, [2, 3, 4, 5])
case("Flatten", {"start_dim": 0}, [2, 3, 4, 5])
case("Flatten", {"start_dim": 2}, [1, 3, 7, 7])
case("Flatten", {"start_dim": 1, "end_dim": -2}, [2, 3, 4, 5])
case("Flatten", {"start_dim": -3, "end_dim": -2}, [2, 3, 4, 5])
case("Flatten", {"start_dim": 2, "end_dim": 2}, [2, 3, 4, 5])
case("Flatten", {}, [5])
case("Flatten", {"start_dim": 0}, [5])
case("Flatten", {"start_dim": 4}, [2, 3, 4, 5])
case("Flatten", {"end_dim": 4}, [2, 3, 4, 5])
case("Flatten", {"start_dim": -5}, [2, 3, 4, 5])
case("Flatten", {"start_dim": 2, "end_dim": 1}, [2, 3, 4, 5])

# Dropout: the identity in eval mode; p outside [0, 1] is a constructor error.
case("Dropout", {"p": 0.5}, [2, 3])
case("Dropout", {"p": 1.0}, [4])
case("Dropout", {"p": 1.5}, [2, 3])
case("Dropout", {"p": -0.1}, [2, 3])

# BatchNorm2d.
case("BatchNorm2d", {"num_features": 3}, [2, 3, 5, 5])
case("BatchNorm2d", {"num_features": 3, "eps": 0.001, "momentum": None, "affine": False},
     [1, 3, 1, 1])
case("BatchNorm2d", {"num_features": 4}, [2, 3, 5, 5])
case("BatchNorm2d", {"num_features": 3}, [2, 3])
case("BatchNorm2d", {"num_features": 3}, [1, 3, 2, 2, 2])
case("BatchNorm2d", {"num_features": 3, "track_running_stats": False}, [2, 3, 4, 4])
case("BatchNorm2d", {"num_features": 4, "affine": False, "track_running_stats": False},
     [2, 3, 4, 4])
case("BatchNorm2d", {"num_features": 3, "track_running_stats": False}, [1, 3, 1, 1])

# LocalResponseNorm.
case("LocalResponseNorm", {"size": 5}, [1, 8, 7, 7])
case("LocalResponseNorm", {"size": 2, "alpha": 0.001, "beta": 0.5, "k": 2.0}, [2, 3, 4, 4])
case("LocalResponseNorm", {"size": 5}, [8, 7, 7])
case("LocalResponseNorm", {"size": 3}, [1, 4, 2, 3, 3])
case("LocalResponseNorm", {"size": 5}, [2, 8])

# Softmax.
case("Softmax", {"dim": 1}, [2, 10])
case("Softmax", {"dim": -1}, [1, 3, 4, 5])
case("Softmax", {"dim": 0}, [5])
case("Softmax", {"dim": -4}, [1, 3, 4, 5])
case("Softmax", {"dim": 4}, [1, 3, 4, 5])
case("Softmax", {"dim": -3}, [2, 10])


# ---- Running PyTorch -------------------------------------------------------

def first_line(exc):
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__


def torch_args(args):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}


def pair(v):
    return list(v) if isinstance(v, list) else [v, v]


def ceil_note(args, shape):
    """Whether ceil_mode's last window was dropped, per spatial dimension."""
    k, p = pair(args["kernel_size"]), pair(args.get("padding", 0))
    s = pair(args["stride"]) if args.get("stride") is not None else k
    d = pair(args.get("dilation", 1))
    dropped = []
    for i, name in enumerate("hw"):
        n = shape[2 + i]
        windows = (n + 2 * p[i] - d[i] * (k[i] - 1) - 1 + s[i] - 1) // s[i] + 1
        if (windows - 1) * s[i] >= n + p[i]:
            dropped.append(name)
    if not dropped:
        return "ceil_mode: last window kept"
    return "ceil_mode: last window dropped (%s)" % ", ".join(dropped)


def run(layer, args, shape):
    out = {"layer": layer, "args": args, "input": shape}
    try:
        m = getattr(nn, layer)(**torch_args(args))
    except Exception as e:  # noqa: BLE001 - any constructor error is a case result
        out["error"] = first_line(e)
        out["construct_error"] = True
        return out
    m.eval()
    try:
        with torch.no_grad():
            y = m(torch.zeros(shape))
    except Exception as e:  # noqa: BLE001
        out["error"] = first_line(e)
    else:
        out["output"] = list(y.shape)
    if args.get("ceil_mode") and "error" not in out:
        out["note"] = ceil_note(args, shape)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "fixtures", "shape_cases.json")
    torch.set_num_threads(1)
    results = [run(*c) for c in CASES]

    layers = {r["layer"] for r in results}
    expected = {"Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "ReLU",
                "Sigmoid", "Tanh", "Flatten", "Dropout", "BatchNorm2d", "LocalResponseNorm",
                "Softmax"}
    assert layers == expected, layers ^ expected
    for layer in ("MaxPool2d", "AvgPool2d"):
        notes = {r.get("note", "")[:28] for r in results if r["layer"] == layer}
        assert "ceil_mode: last window kept" in notes, layer
        assert "ceil_mode: last window dropp" in notes, layer

    text = "[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == results
    n_err = sum("error" in r for r in results)
    n_con = sum(bool(r.get("construct_error")) for r in results)
    print("%s: %d cases (%d outputs, %d errors, %d at construction), torch %s"
          % (os.path.relpath(path), len(results), len(results) - n_err, n_err, n_con,
             torch.__version__))


if __name__ == "__main__":
    main()
