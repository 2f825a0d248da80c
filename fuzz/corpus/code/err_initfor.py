class A(nn.Module):
    def __init__(self):
        super().__init__()
        for i in range(3):
            pass
