net = nn.Sequential(nn.MaxPool2d(2, return_indices=True))
