net = nn.Sequential(nn.Linear(n, 2))
