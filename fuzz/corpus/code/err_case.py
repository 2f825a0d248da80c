net = nn.Sequential(nn.conv2d(1, 6, 5))
