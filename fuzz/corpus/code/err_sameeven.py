net = nn.Sequential(nn.Conv2d(1, 2, 4, padding='same'))
