class def(nn.Module):
    pass
