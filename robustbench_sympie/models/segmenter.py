"""The segmenter wrapper: a frozen segmentation network that owns its normalisation (like :class:`Classifier`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .base import IMAGENET_MEAN, IMAGENET_STD

CITYSCAPES_NUM_CLASSES = 19

Size = int | tuple[int, int]


def _pair(value: Size | None) -> tuple[int, int] | None:
    return None if value is None else (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering ``[0, length)``: every ``stride``, plus a last one flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    return starts if starts[-1] == length - window else [*starts, length - window]


class Segmenter(nn.Module):
    """A frozen semantic segmenter taking RGB in [0, 1] and returning logits at the input resolution.

    Args:
        net: the network on normalised images; it returns logits (a tensor, or a dict holding ``output_key``),
            at any resolution (bilinearly resized to the input's, or the window's, size).
        num_classes: number of output channels (19 for Cityscapes train ids).
        mean, std: the normalisation the weights were trained with, on the [0, 1] scale.
        window: ``(height, width)`` (or one int) of a sliding window; ``None`` runs on the full image.
        stride: step between windows (default: the window, no overlap); overlapping logits are averaged.
        output_key: the logits' key when ``net`` returns a dict (torchvision returns ``{"out": ...}``).
    """

    task = "segmentation"

    def __init__(self, net: nn.Module, *, name: str, num_classes: int = CITYSCAPES_NUM_CLASSES,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, weights: str = "",
                 window: Size | None = None, stride: Size | None = None, output_key: str = "out") -> None:
        super().__init__()
        self.net, self.name, self.weights, self.num_classes = net, name, weights, num_classes
        self.output_key = output_key
        self.window = _pair(window)
        self.stride = _pair(stride) or self.window
        if self.stride is not None and min(self.stride) <= 0:
            raise ValueError(f"sliding-window stride must be positive, got {stride}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Segmenter:
        """Downstream models stay in eval mode (frozen BN statistics, no dropout)."""
        return super().train(False)

    def logits(self, normalised: torch.Tensor) -> torch.Tensor:
        """One pass of the network, logits resized to the input's size."""
        out = self.net(normalised)
        out = out[self.output_key] if isinstance(out, dict) else out
        if out.shape[-2:] != normalised.shape[-2:]:
            out = F.interpolate(out, size=normalised.shape[-2:], mode="bilinear", align_corners=False)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        normalised = (images - self.mean) / self.std
        return self.logits(normalised) if self.window is None else self.sliding_window(normalised)

    def sliding_window(self, normalised: torch.Tensor) -> torch.Tensor:
        """Logits averaged over windows of ``self.window`` every ``self.stride`` (images padded to a window)."""
        assert self.window is not None and self.stride is not None
        height, width = normalised.shape[-2:]
        (wh, ww), (sh, sw) = self.window, self.stride
        padded = F.pad(normalised, (0, max(ww - width, 0), 0, max(wh - height, 0)))  # 0 = the mean colour
        total: torch.Tensor | None = None
        count = torch.zeros(1, 1, *padded.shape[-2:], device=padded.device, dtype=torch.float32)
        for top in window_starts(padded.shape[-2], wh, sh):
            for left in window_starts(padded.shape[-1], ww, sw):
                out = self.logits(padded[..., top:top + wh, left:left + ww]).float()
                if total is None:
                    total = out.new_zeros(*out.shape[:2], *padded.shape[-2:])
                total[..., top:top + wh, left:left + ww] += out
                count[..., top:top + wh, left:left + ww] += 1
        assert total is not None
        return (total / count)[..., :height, :width]

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, weights={self.weights!r}, num_classes={self.num_classes}, "
                f"window={self.window}, stride={self.stride}")
