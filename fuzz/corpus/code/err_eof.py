net = nn.Sequential(
    nn.Conv2d(1, 6, 5),
