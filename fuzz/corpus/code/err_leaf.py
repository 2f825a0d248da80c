net = nn.Linear(3, 4)
