class A(nn.Module):
    def forward(self, x):
        return x
