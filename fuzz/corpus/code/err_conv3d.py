net = nn.Sequential(nn.Conv3d(1, 6, 5))
