net = nn.Sequential(OrderedDict([('01', nn.ReLU())]))
