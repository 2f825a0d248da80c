# 中文注释
net = nn.Sequential(nn.ReLU(), 中)
