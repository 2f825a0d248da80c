net = nn.Sequential(nn.MaxPool2d([3, 3]))
