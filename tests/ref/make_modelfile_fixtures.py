#!/usr/bin/python3
"""Reference fixtures for cnnkit's model files (tests/test_modelfile.c).

Usage: /usr/bin/python3 tests/ref/make_modelfile_fixtures.py

Writes, from the repository root:
- models/lenet.txt, models/alexnet.txt: print(model) of the zoo's LeNet and
  AlexNet (tests/ref/nets.py), after checking that models/lenet.py, the notes'
  class code, defines the same LeNet;
- models/tvstyle.txt and tests/fixtures/tvstyle.{weights,io}.safetensors: the
  class in models/tvstyle.py (run as it is), with randomized BatchNorm
  statistics, its print, its state_dict and one input/output pair in eval
  mode (input [2, 3, 32, 32]), and tests/fixtures/tvstyle.trace.txt, the
  notes' loop over its layers (print(layer), then the output's shape);
- tests/fixtures/modelfile_layers.json: [code, repr] for every layer in every
  argument form, each code evaluated by PyTorch.
"""
import json
import os
import sys
import zlib

import torch
from torch import nn

sys.dont_write_bytecode = True  # keep the source tree clean
import st  # noqa: E402
from make_fixtures import randomize_bn, write_model  # noqa: E402
from nets import AlexNet, LeNet  # noqa: E402

# Every layer of cnnkit's set, in the argument forms people write: positional,
# keyword, ints and tuples, defaults spelled out, arithmetic.
LAYER_FORMS = [
    "nn.Conv2d(1, 6, 5)",
    "nn.Conv2d(1, 6, kernel_size=5, padding=2)",
    "nn.Conv2d(6, 16, kernel_size=5)",
    "nn.Conv2d(3, 8, (3, 5), (2, 1), (1, 2), (2, 1), 1, False)",
    "nn.Conv2d(4, 8, 3, groups=4, bias=False)",
    "nn.Conv2d(in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=1, "
    "dilation=2, groups=2, bias=True, padding_mode='zeros')",
    "nn.Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))",
    "nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)",
    "nn.Conv2d(2 * (1 + 2), 6, 5 % 3 + 1, dilation=(2, 2))",
    "nn.Conv2d(16, 32, 3, 1, 1, device=None, dtype=None)",
    "nn.Linear(400, 120)",
    "nn.Linear(16 * 5 * 5, 120)",
    "nn.Linear(400, 120, False)",
    "nn.Linear(in_features=4, out_features=2, bias=False)",
    "nn.Linear(6400 // 2, 10 - 2 * 3)",
    "nn.MaxPool2d(3)",
    "nn.MaxPool2d(3, 2)",
    "nn.MaxPool2d(kernel_size=3, stride=2)",
    "nn.MaxPool2d(2, stride=None, ceil_mode=True)",
    "nn.MaxPool2d((2, 2))",
    "nn.MaxPool2d(3, 2, 1, 2)",
    "nn.MaxPool2d((3, 2), (2, 1), (1, 1), (2, 1), False, True)",
    "nn.MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)",
    "nn.MaxPool2d(kernel_size=(3, 3), stride=2, padding=(1, 0), return_indices=False)",
    "nn.AvgPool2d(2)",
    "nn.AvgPool2d(kernel_size=2, stride=2)",
    "nn.AvgPool2d((3, 2), (2, 2), (1, 1), True, False)",
    "nn.AvgPool2d(3, stride=(2, 1), padding=1, ceil_mode=True, count_include_pad=False, "
    "divisor_override=None)",
    "nn.AvgPool2d(kernel_size=(2, 2), stride=None)",
    "nn.AdaptiveAvgPool2d(1)",
    "nn.AdaptiveAvgPool2d((3, 3))",
    "nn.AdaptiveAvgPool2d(output_size=(6, 6))",
    "nn.AdaptiveAvgPool2d(output_size=7)",
    "nn.AdaptiveAvgPool2d((2, 5))",
    "nn.ReLU()",
    "nn.ReLU(True)",
    "nn.ReLU(inplace=True)",
    "nn.ReLU(inplace=False)",
    "nn.Sigmoid()",
    "nn.Tanh()",
    "nn.Flatten()",
    "nn.Flatten(0)",
    "nn.Flatten(1, 2)",
    "nn.Flatten(start_dim=2, end_dim=-2)",
    "nn.Dropout()",
    "nn.Dropout(0.3)",
    "nn.Dropout(p=0.25, inplace=True)",
    "nn.Dropout(0.0)",
    "nn.Dropout(p=1 / 4)",
    "nn.BatchNorm2d(4)",
    "nn.BatchNorm2d(4, 0.001, 0.2, False, False)",
    "nn.BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
    "nn.BatchNorm2d(16, momentum=None)",
    "nn.BatchNorm2d(8, eps=1e-3)",
    "nn.BatchNorm2d(num_features=3, eps=0.00001, momentum=0.5, affine=False)",
    "nn.LocalResponseNorm(3)",
    "nn.LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2.0)",
    "nn.LocalResponseNorm(size=4, alpha=1e-3, beta=0.5, k=1.5)",
    "nn.LocalResponseNorm(3, 0.001, 0.6, 2.0)",
    "nn.Softmax(dim=1)",
    "nn.Softmax(-1)",
    "nn.Softmax(dim=0)",
]


def write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def run_file(path):
    """Runs a model file as Python, with nn, torch and OrderedDict at hand
    (the notes' code uses nn without importing it)."""
    from collections import OrderedDict
    scope = {"torch": torch, "nn": nn, "OrderedDict": OrderedDict,
             "__name__": "modelfile"}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), scope)
    return scope


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    models = os.path.join(root, "models")
    fixtures = os.path.join(root, "tests", "fixtures")
    torch.set_num_threads(1)

    # The notes' class code is the zoo's LeNet.
    notes = run_file(os.path.join(models, "lenet.py"))["LeNet"]()
    assert repr(notes) == repr(LeNet()), "models/lenet.py is not the zoo's LeNet"
    write_text(os.path.join(models, "lenet.txt"), repr(LeNet()) + "\n")
    write_text(os.path.join(models, "alexnet.txt"), repr(AlexNet()) + "\n")

    # The torchvision-style model, run from its file.
    cls = run_file(os.path.join(models, "tvstyle.py"))["TVStyle"]
    torch.manual_seed(zlib.crc32(b"tvstyle") & 0x7FFFFFFF)
    model = cls()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            randomize_bn(m)
    x = torch.randn(2, 3, 32, 32)
    y = write_model(fixtures, "tvstyle", model, x)
    write_text(os.path.join(models, "tvstyle.txt"), repr(model) + "\n")
    # The notes' loop over the leaves, in the order they run.
    lines = []
    with torch.no_grad():
        h = x
        for m in model.modules():
            if not list(m.children()):
                h = m(h)
                lines += [repr(m), str(h.shape)]
    assert torch.equal(h, y)
    write_text(os.path.join(fixtures, "tvstyle.trace.txt"), "\n".join(lines) + "\n")
    print("tvstyle: input %s output %s" % (list(x.shape), list(y.shape)))

    forms = []
    for code in LAYER_FORMS:
        layer = eval(code, {"nn": nn})
        forms.append([code, repr(layer)])
    with open(os.path.join(fixtures, "modelfile_layers.json"), "w",
              encoding="utf-8", newline="\n") as f:
        json.dump(forms, f, indent=1)
        f.write("\n")
    print("modelfile_layers.json: %d layer forms" % len(forms))
    print("models: lenet.txt alexnet.txt tvstyle.txt")


if __name__ == "__main__":
    main()
