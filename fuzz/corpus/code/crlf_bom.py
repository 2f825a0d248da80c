import torch
net = nn.Sequential(
    nn.ReLU())
