class A(nn.Module):
    def __init__(self):
        pass
