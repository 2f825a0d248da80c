net = nn.Sequential(nn.Linear(2 ** 3, 2))
