import torch
from torch import nn

net = nn.Sequential(
    nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, 2 nn.ReLU(),
)
