net = nn.Sequential(nn.Conv2d(1, 2, 3, 2, 'same'))
