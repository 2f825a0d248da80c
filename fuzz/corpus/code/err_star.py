net = nn.Sequential(*layers)
