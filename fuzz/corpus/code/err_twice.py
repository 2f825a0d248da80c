net = nn.Sequential(nn.Conv2d(1, 6, 5, stride=1, stride=2))
