net = nn.Sequential(nn.AvgPool2d(2, divisor_override=3))
