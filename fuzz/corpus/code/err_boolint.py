net = nn.Sequential(nn.Conv2d(True, 6, 5))
