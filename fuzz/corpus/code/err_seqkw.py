net = nn.Sequential(relu=nn.ReLU())
