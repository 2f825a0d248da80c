"""A small torchvision-style network: a `features` stack, an adaptive pool and
a `classifier`, as torchvision's AlexNet and VGG are written. cnnkit reads
this file as it is; tests/ref/make_modelfile_fixtures.py runs the same file
through PyTorch for the parity fixtures."""
import torch
from torch import nn


class TVStyle(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(3, alpha=0.0001, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 32 -> 16
            nn.Conv2d(16, 32, kernel_size=3, padding=2, dilation=2),  # dilated
            nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, kernel_size=(3, 1), padding=(1, 0), groups=4),  # grouped
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # 16 -> 8
        )
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(p=dropout),
            nn.Linear(32 * 3 * 3, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        return self.classifier(x)
