a = nn.Sequential(nn.ReLU())
b = nn.Sequential(nn.Tanh())
