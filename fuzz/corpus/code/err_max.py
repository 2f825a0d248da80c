net = nn.Sequential(nn.Linear(max(3, 4), 2))
