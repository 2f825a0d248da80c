net = nn.Sequential(nn.Linear(9223372036854775807 + 1, 2))
