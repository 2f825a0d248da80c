from collections import OrderedDict

import torch
from torch import nn

C = 3
HIDDEN = 16 * 2  # constants are names bound to literals

model = torch.nn.Sequential(OrderedDict([
    ('conv1', nn.Conv2d(C, HIDDEN, kernel_size=(3, 3), padding=1)),
    ('relu1', nn.ReLU(inplace=True)),
    ('pool', nn.MaxPool2d(2, 2, ceil_mode=True)),
    ('block', nn.Sequential(nn.Conv2d(HIDDEN, HIDDEN, 3, groups=4), nn.Tanh())),
    ('gap', nn.AdaptiveAvgPool2d(1)),
    ('flat', nn.Flatten()),
    ('fc', nn.Linear(HIDDEN, 10 - 1 + 1)),
    ('prob', nn.Softmax(dim=1)),
]))
