net = nn.Sequential(nn.Linear(0x10, 2))
