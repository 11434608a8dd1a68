"""The identity enhancer: the baseline every other enhancer is compared with."""

from __future__ import annotations

import torch

from .base import Enhancer, check_enhancer_input
from .registry import register_enhancer


@register_enhancer("identity")
class Identity(Enhancer):
    """Returns its input unchanged (no enhancement)."""

    name = "identity"
    requires_weights = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_enhancer_input(images)
        return images
