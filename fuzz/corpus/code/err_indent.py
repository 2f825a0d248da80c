import torch
    net = nn.Sequential()
