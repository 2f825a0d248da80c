@dataclass
class A(nn.Module):
    pass
