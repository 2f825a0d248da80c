net = nn.Sequential(nn.Linear(4.0, 2))
