class A(nn.Module):
    def __init__(self):
        super().__init__()
      self.r = nn.ReLU()
