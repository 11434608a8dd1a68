"""The downstream classifier wrapper: it owns its input normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class Classifier(nn.Module):
    """A frozen ImageNet classifier taking RGB in [0, 1] and returning 1000-way logits.

    The wrapper normalises the input with the statistics its weights were trained with, so any
    enhancer (which works in [0, 1]) composes with any model.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        weights: str = "",
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.weights = weights
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.net.to(memory_format=torch.channels_last)  # ~1.5x faster convolutions on CPU
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        """Downstream models stay in eval mode (frozen BN statistics, no dropout)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        normalised = (images - self.mean) / self.std
        return self.net(normalised.contiguous(memory_format=torch.channels_last))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights!r}"
