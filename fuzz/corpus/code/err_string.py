x = 'abc
net = nn.Sequential()
