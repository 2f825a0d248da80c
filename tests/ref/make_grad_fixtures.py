#!/usr/bin/python3
"""Generate PyTorch's gradients and optimizer steps for cnnkit's training tests.

Usage: /usr/bin/python3 tests/ref/make_grad_fixtures.py [OUTDIR]
(OUTDIR defaults to tests/fixtures next to this script.)

For each model NAME (lenet, allnet: a small net with every layer type):
  NAME_grad.weights.safetensors  the state_dict before the step (metadata: repr)
  NAME_grad.step.safetensors     input, labels (I64), loss (scalar), dinput,
                                 grad.<key> for every parameter, and the
                                 state_dict after the training forward
                                 (after.<key>: BatchNorm's running statistics)
For each optimizer OPT (sgd_momentum, sgd_nesterov, adam, adamw), on LeNet:
  lenet_OPT.steps.safetensors    input.K and labels.K for K = 0, 1, 2 and the
                                 state_dict after three steps (after.<key>);
                                 metadata: the optimizer's settings
The weights before the steps are lenet_grad.weights.safetensors.
Everything is float32, in training mode, one thread, seeded.
"""
import os
import sys
import zlib

import torch
from torch import nn

sys.dont_write_bytecode = True
import st  # noqa: E402
from nets import LeNet  # noqa: E402

torch.set_num_threads(1)


class AllNet(nn.Module):
    """Every layer type cnnkit has, with non-default attributes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.LocalResponseNorm(3, alpha=0.01, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=2, ceil_mode=True),
            nn.Conv2d(8, 8, kernel_size=(3, 2), stride=(1, 2), padding=(1, 1),
                      dilation=(2, 1), groups=2),
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=1, padding=1, count_include_pad=False),
            nn.AdaptiveAvgPool2d((2, 3)),
            nn.Sigmoid(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(p=0.0),
            nn.Linear(48, 16),
            nn.ReLU(),
            nn.Linear(16, 10),
            nn.Softmax(dim=1),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def state(model, prefix=""):
    return {prefix + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def grad_fixture(outdir, name, model, x, labels):
    meta = {"repr": repr(model), "torch": torch.__version__}
    st.save_file(state(model), os.path.join(outdir, name + "_grad.weights.safetensors"), meta)
    model.train()
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    out = {"input": x.detach(), "labels": labels, "loss": loss.detach().reshape(()),
           "dinput": x.grad.detach()}
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad.detach().contiguous()
    out.update(state(model, "after."))
    st.save_file(out, os.path.join(outdir, name + "_grad.step.safetensors"))
    print("%-8s loss %.6f, %d parameter gradients" % (name, loss.item(), len(list(model.parameters()))))


def optim_fixture(outdir, name, make_optimizer, settings):
    torch.manual_seed(1)
    model = LeNet()
    opt = make_optimizer(model.parameters())
    model.train()
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    out = {}
    for k in range(3):
        x = torch.rand(8, 1, 28, 28, generator=gen)
        labels = torch.randint(0, 10, (8,), generator=gen)
        out["input.%d" % k] = x
        out["labels.%d" % k] = labels
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()
    out.update(state(model, "after."))
    st.save_file(out, os.path.join(outdir, "lenet_%s.steps.safetensors" % name), settings)
    print("%-8s 3 steps of %s" % (name, settings))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    os.makedirs(outdir, exist_ok=True)

    torch.manual_seed(1)
    lenet = LeNet()
    grad_fixture(outdir, "lenet", lenet, torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)))

    torch.manual_seed(2)
    allnet = AllNet()
    with torch.no_grad():  # running statistics and affine parameters that are not defaults
        bn = allnet.features[1]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    grad_fixture(outdir, "allnet", allnet, torch.randn(4, 3, 9, 11), torch.randint(0, 10, (4,)))

    # The seed in the generator below keys off the name; keep names stable.
    optim_fixture(outdir, "sgd_momentum",
                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1,
                                            weight_decay=1e-3),
                  {"optim": "sgd", "lr": "0.1", "momentum": "0.9", "dampening": "0.1",
                   "weight_decay": "0.001", "nesterov": "0"})
    optim_fixture(outdir, "sgd_nesterov",
                  lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
                  {"optim": "sgd", "lr": "0.05", "momentum": "0.8", "dampening": "0",
                   "weight_decay": "0", "nesterov": "1"})
    optim_fixture(outdir, "adam",
                  lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
                  {"optim": "adam", "lr": "0.01", "weight_decay": "0.001"})
    optim_fixture(outdir, "adamw",
                  lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
                  {"optim": "adamw", "lr": "0.01", "weight_decay": "0.1"})


if __name__ == "__main__":
    main()
