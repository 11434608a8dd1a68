"""The enhancer contract: an ``nn.Module`` from RGB in [0, 1] to RGB in [0, 1]."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class Enhancer(nn.Module):
    """Base class of every enhancer.

    ``forward`` takes a float batch ``B x 3 x H x W`` of RGB values in [0, 1], any H and W,
    and returns a batch of the same shape, dtype and range. Enhancers never normalise for a
    downstream model: models own their normalisation, so any enhancer composes with any model.
    """

    #: registry name of the enhancer
    name: ClassVar[str] = "enhancer"
    #: whether the enhancer needs trained weights to be meaningful (refused without them unless allowed)
    requires_weights: ClassVar[bool] = False
    #: whether the constructor takes ``weights=`` (a file or a named entry; ``None`` = the default weights)
    accepts_weights: ClassVar[bool] = False
    #: whether the constructor takes ``downstream_model=`` (weights or behaviour chosen per model); an enhancer
    #: that does not depend on the model is computed once per batch and shared by every model of the grid
    depends_on_model: ClassVar[bool] = False

    @classmethod
    def weights_hint(cls) -> str:
        """Which weights file the enhancer needs and where to get it ('' when it needs none)."""
        return ""

    @property
    def has_weights(self) -> bool:
        """True when the weights the enhancer needs are loaded (always true if it needs none)."""
        return not self.requires_weights

    @property
    def weights_description(self) -> str:
        """Where the weights came from, for the results' provenance columns."""
        return ""

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def check_enhancer_input(images: torch.Tensor) -> None:
    """Raise a clear error when ``images`` is not a ``B x 3 x H x W`` floating batch."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"enhancers take a B x 3 x H x W RGB batch, got {shape}")
    if not images.is_floating_point():
        raise TypeError(f"enhancers take float images in [0, 1], got dtype {images.dtype}")
