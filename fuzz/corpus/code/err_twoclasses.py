class A(nn.Module):
    pass
class B(nn.Module):
    pass
