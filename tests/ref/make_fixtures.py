#!/usr/bin/python3
"""Generate the committed PyTorch reference fixtures for cnnkit's tests.

Usage: /usr/bin/python3 tests/ref/make_fixtures.py [OUTDIR]
(OUTDIR defaults to tests/fixtures next to this script.)

For each fixture NAME writes NAME.weights.safetensors (full state_dict,
metadata repr/torch/input_shape) and NAME.io.safetensors (input, output),
plus lenet/alexnet print and shape-trace text files.
"""
import contextlib
import io
import os
import sys
import zlib

import torch
from torch import nn

sys.dont_write_bytecode = True  # keep the source tree clean
import st  # noqa: E402
from nets import AlexNet, LeNet  # noqa: E402


def seed_for(name):
    """Stable per-fixture seed, independent of fixture order."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def state_dict_tensors(model):
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if v.dtype == torch.float32:
            pass
        elif v.dtype == torch.int64:
            assert k.endswith("num_batches_tracked") and v.dim() == 0, k
        else:
            raise TypeError("%s: unexpected dtype %s" % (k, v.dtype))
        out[k] = v
    return out


def write_model(outdir, name, model, x, inplace=False):
    """Write NAME.weights/io.safetensors, re-read and check them.
    Returns the output tensor."""
    model.eval()
    x = x.detach().to(torch.float32).contiguous()
    with torch.no_grad():
        y = model(x.clone() if inplace else x)
    y = y.detach().to(torch.float32).contiguous()
    meta = {"repr": repr(model), "torch": torch.__version__,
            "input_shape": ",".join(str(d) for d in x.shape)}
    weights = state_dict_tensors(model)
    wpath = os.path.join(outdir, name + ".weights.safetensors")
    iopath = os.path.join(outdir, name + ".io.safetensors")
    st.save_file(weights, wpath, metadata=meta)
    st.save_file({"input": x, "output": y}, iopath)
    st.check_roundtrip(wpath, weights, meta)
    st.check_roundtrip(iopath, {"input": x, "output": y})
    return y


def randomize_bn(bn):
    with torch.no_grad():
        if bn.affine:
            bn.weight.copy_(torch.randn_like(bn.weight))
            bn.bias.copy_(torch.randn_like(bn.bias))
        if bn.track_running_stats:
            bn.running_mean.copy_(torch.randn_like(bn.running_mean))
            bn.running_var.copy_(torch.rand_like(bn.running_var) + 0.5)
    return bn


def seq(layer):
    return nn.Sequential(layer)


# name -> (layer factory, input shape, input scale). The factory runs after
# torch.manual_seed, so default init is deterministic; inputs are drawn after.
LAYERS = [
    ("conv2d_basic", lambda: nn.Conv2d(3, 4, kernel_size=3), (2, 3, 7, 9), 2.0),
    ("conv2d_full", lambda: nn.Conv2d(
        4, 6, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2),
        dilation=(2, 1), groups=2, bias=False), (2, 4, 11, 13), 2.0),
    ("conv2d_depthwise", lambda: nn.Conv2d(4, 8, kernel_size=3, padding=1,
                                           groups=4), (1, 4, 6, 6), 2.0),
    ("linear", lambda: nn.Linear(12, 5), (3, 12), 2.0),
    ("linear_nobias_3d", lambda: nn.Linear(7, 4, bias=False), (2, 3, 7), 2.0),
    ("maxpool", lambda: nn.MaxPool2d(kernel_size=3, stride=2),
     (2, 3, 9, 9), 2.0),
    ("maxpool_full", lambda: nn.MaxPool2d(
        kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1),
        ceil_mode=True), (1, 2, 10, 7), 2.0),
    ("maxpool_ceil_last_window", lambda: nn.MaxPool2d(
        2, stride=2, padding=1, ceil_mode=True), (1, 2, 5, 5), 2.0),
    ("avgpool", lambda: nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
     (2, 3, 8, 8), 2.0),
    ("avgpool_ceil_exclude_pad", lambda: nn.AvgPool2d(
        kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True,
        count_include_pad=False), (1, 2, 8, 7), 2.0),
    ("avgpool_ceil_include_pad", lambda: nn.AvgPool2d(
        3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 6), 2.0),
    ("adaptiveavgpool", lambda: nn.AdaptiveAvgPool2d((3, 2)),
     (2, 3, 7, 5), 2.0),
    ("adaptiveavgpool_global", lambda: nn.AdaptiveAvgPool2d(1),
     (1, 3, 5, 5), 2.0),
    ("relu", lambda: nn.ReLU(inplace=True), (2, 3, 4, 4), 2.0),
    ("sigmoid", lambda: nn.Sigmoid(), (2, 3, 4, 4), 2.0),
    ("tanh", lambda: nn.Tanh(), (2, 3, 4, 4), 2.0),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4, 5), 2.0),
    ("flatten_middle", lambda: nn.Flatten(start_dim=1, end_dim=2),
     (2, 3, 4, 5), 2.0),
    ("dropout", lambda: nn.Dropout(p=0.3), (2, 5), 2.0),
    ("batchnorm", lambda: randomize_bn(nn.BatchNorm2d(4)), (2, 4, 5, 5), 2.0),
    ("batchnorm_noaffine", lambda: randomize_bn(nn.BatchNorm2d(
        3, eps=0.001, momentum=0.2, affine=False)), (2, 3, 4, 4), 2.0),
    ("batchnorm_batchstats", lambda: randomize_bn(nn.BatchNorm2d(
        3, track_running_stats=False)), (2, 3, 4, 4), 2.0),
    ("lrn", lambda: nn.LocalResponseNorm(3, alpha=0.001, beta=0.6, k=2.0),
     (2, 6, 4, 4), 10.0),
    ("lrn_even", lambda: nn.LocalResponseNorm(4), (1, 5, 3, 3), 2.0),
    ("softmax", lambda: nn.Softmax(dim=1), (2, 5, 3, 3), 2.0),
    ("softmax_last", lambda: nn.Softmax(dim=-1), (3, 7), 2.0),
]


def capture(fn):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn()
    return buf.getvalue()


def trace(model, x):
    """The notes' shape-trace loop."""
    def run():
        nonlocal x
        with torch.no_grad():
            for layer in model.net:
                print(layer)
                x = layer(x)
                print(x.shape)
    return capture(run)


def write_text(outdir, fname, text):
    with open(os.path.join(outdir, fname), "w", encoding="utf-8",
              newline="\n") as f:
        f.write(text)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = argv[1] if len(argv) > 1 else os.path.join(here, "..", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)

    for name, factory, shape, scale in LAYERS:
        torch.manual_seed(seed_for(name))
        model = seq(factory())
        x = torch.randn(*shape) * scale
        y = write_model(outdir, name, model, x, inplace=(name == "relu"))
        print("%-26s input %-16s output %s" % (name, list(shape), list(y.shape)))

    torch.manual_seed(0)
    lenet = LeNet()
    x = torch.rand(2, 1, 28, 28)
    y = write_model(outdir, "lenet", lenet, x)
    print("%-26s input %-16s output %s" % ("lenet", list(x.shape), list(y.shape)))

    # Printed structure and shape traces (values do not matter, shapes do).
    torch.manual_seed(0)
    lenet = LeNet().eval()
    write_text(outdir, "lenet.print.txt", capture(lambda: print(lenet)))
    write_text(outdir, "lenet.trace.txt", trace(lenet, torch.rand(1, 1, 28, 28)))
    torch.manual_seed(0)
    alexnet = AlexNet().eval()
    write_text(outdir, "alexnet.print.txt", capture(lambda: print(alexnet)))
    write_text(outdir, "alexnet.trace.txt",
               trace(alexnet, torch.rand(1, 1, 224, 224)))
    print("text: lenet.print.txt lenet.trace.txt alexnet.print.txt "
          "alexnet.trace.txt")


if __name__ == "__main__":
    main(sys.argv)
