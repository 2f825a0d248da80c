net = nn.Sequential(nn.Linear(2, 2, device='cuda'))
