class A(nn.Module):
    def __init__(self, n=2):
        super().__init__()
        self.fc = nn.Linear(n, 2)
net = A(m=3)
