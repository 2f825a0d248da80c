net = nn.Sequential(OrderedDict([('a', nn.ReLU()), ('a', nn.Tanh())]))
