net = nn.Sequential(OrderedDict([('a-b', nn.ReLU())]))
