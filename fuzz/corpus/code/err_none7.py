net = nn.Sequential(nn.AdaptiveAvgPool2d((None, 7)))
