net = nn.Sequential(nn.Conv2d(1, 6, 5, kernel_size=3))
