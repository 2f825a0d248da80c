net = nn.Sequential(nn.ReLU())
net.add_module('t', nn.Tanh())
