"""Batched torch versions of SyMPIE's colour warps (``robustbench_sympie.corruptions.colour_warps``).

Same formulas, rounded half to even like ``np.rint``, in float32 where the reference uses float64 (measured
on 20 images at 224 px given the same random integers: mean abs difference <= 0.0005, at most one level, only
``sunset``; ``night``, ``white_point`` and ``darken`` identical). The random integers (light swing, offsets)
are drawn from torch streams with the reference's ranges. ``*_from`` functions take those integers explicitly
(used by the tests).
"""

from __future__ import annotations

import torch

from . import rng
from .base import register_torch_corruption

_BRIGHT_THRESHOLD = 128.0


def _blend(image: torch.Tensor, target: torch.Tensor, severity: int) -> torch.Tensor:
    weight = severity / 5.0
    return weight * target + (1.0 - weight) * image


def _light(values: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """``B x 3 x 1 x 1`` light from three ``B`` (or scalar) channel values."""
    b = like.shape[0]
    return torch.stack([v.to(like) * torch.ones(b, dtype=like.dtype, device=like.device) for v in values],
                       dim=1).view(b, 3, 1, 1)


@register_torch_corruption("darken", note="exact")
def darken(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return torch.round(images / (severity + 1))  # float32, as the reference


def sunset_from(images: torch.Tensor, severity: int, swing: torch.Tensor) -> torch.Tensor:
    """Sunset with the light's swing ``d`` (``B`` integers in -32..32)."""
    pixels = images.float()
    d = swing.to(pixels)
    light = _light([torch.tensor(255.0), 192.0 + d, 192.0 - d], pixels)
    warm = pixels * (light / 255.0) + light / 10.0
    return torch.round(_blend(pixels, warm, severity)).clamp_(0, 255).float()


@register_torch_corruption("sunset", note="exact given the swing up to rare one-level float32 rounding, drawn "
                                          "uniformly in -32..32 from a torch stream")
def sunset(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return sunset_from(images, severity, rng.randint(seeds, -32, 33, (), stream=0, device=images.device))


def night_from(images: torch.Tensor, severity: int, blue: torch.Tensor) -> torch.Tensor:
    """Night with the blue light offset ``b`` (``B`` integers in -24..24)."""
    pixels = images.float()
    light = _light([torch.tensor(32.0), torch.tensor(32.0), 64.0 + blue.to(pixels)], pixels)
    bright = pixels.mean(dim=1, keepdim=True) > _BRIGHT_THRESHOLD
    dark_sky = torch.where(bright, 255.0 - pixels, pixels)
    target = 0.8 * (pixels * (light / 255.0)) + 0.2 * dark_sky
    return torch.round(_blend(pixels, target, severity)).clamp_(0, 255).float()


@register_torch_corruption("night", note="exact given the blue offset, drawn uniformly in -24..24 from a torch stream")
def night(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return night_from(images, severity, rng.randint(seeds, -24, 25, (), stream=0, device=images.device))


def white_point_from(images: torch.Tensor, severity: int, offsets: torch.Tensor) -> torch.Tensor:
    """White point with per-channel offsets (``B x 3`` integers in -32..32)."""
    pixels = images.float()
    white = 255.0 + severity * offsets.to(pixels).view(-1, 3, 1, 1) / 5.0
    return torch.round(pixels * (white / 255.0)).clamp_(0, 255).float()


@register_torch_corruption("white_point",
                           note="exact given the three offsets, drawn uniformly in -32..32 from a torch stream")
def white_point(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    return white_point_from(images, severity, rng.randint(seeds, -32, 33, (3,), stream=0, device=images.device))
