"""Training-free parametric enhancers: global colour/tone operations and a small sharpening kernel.

These test SyMPIE's thesis that global colour operations and small kernels explain most of its gain.
All but CLAHE are batched torch operations with per-image statistics.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ._base import BaselineEnhancer, NumpyEnhancer, gaussian_kernel1d, luminance, separable_blur

EPS = 1e-6


class GreyWorld(BaselineEnhancer):
    """Grey-world white balance: scale each channel so that its mean equals the mean over channels."""

    name = "grey_world"
    cost_note = "element-wise only (3 means + 3 gains per image): FlopCounterMode counts 0"

    def __init__(self, max_gain: float = 3.0) -> None:
        super().__init__()
        self.max_gain = max_gain

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        means = images.mean(dim=(2, 3), keepdim=True)
        gains = means.mean(dim=1, keepdim=True) / means.clamp_min(EPS)
        return images * gains.clamp(1.0 / self.max_gain, self.max_gain)


class AutoLevels(BaselineEnhancer):
    """Contrast stretch: map the ``low``/``high`` percentiles of each channel (or of all channels) to 0 and 1."""

    name = "auto_levels"
    cost_note = "two quantiles + an affine map per channel: FlopCounterMode counts 0"

    def __init__(self, low: float = 0.01, high: float = 0.99, per_channel: bool = True,
                 min_range: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
        self.low, self.high, self.per_channel, self.min_range = low, high, per_channel, min_range

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(2) if self.per_channel else images.flatten(1).unsqueeze(1)
        q = torch.tensor([self.low, self.high], device=images.device, dtype=images.dtype)
        lo, hi = torch.quantile(flat, q, dim=-1).unsqueeze(-1).unsqueeze(-1)  # each B x C' x 1 x 1
        return (images - lo) / (hi - lo).clamp_min(self.min_range)


class AutoGamma(BaselineEnhancer):
    """Gamma / auto-exposure: ``x ** gamma`` with gamma fixed, or chosen per image to map mean luma to ``target``."""

    name = "auto_gamma"
    cost_note = "element-wise power: FlopCounterMode counts 0"

    def __init__(self, gamma: float | None = None, target: float = 0.5, min_gamma: float = 0.4,
                 max_gamma: float = 2.5) -> None:
        super().__init__()
        self.gamma, self.target, self.min_gamma, self.max_gamma = gamma, target, min_gamma, max_gamma

    def gammas(self, images: torch.Tensor) -> torch.Tensor:
        """The per-image gamma, B x 1 x 1 x 1."""
        if self.gamma is not None:
            return torch.full((images.shape[0], 1, 1, 1), self.gamma, device=images.device, dtype=images.dtype)
        mean = luminance(images).mean(dim=(2, 3), keepdim=True).clamp(0.01, 0.99)
        return (math.log(self.target) / mean.log()).clamp(self.min_gamma, self.max_gamma)

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        return images.clamp_min(0.0) ** self.gammas(images)


class UnsharpMask(BaselineEnhancer):
    """Unsharp masking: ``x + amount * (x - gaussian(x, sigma))`` (separable depthwise convolution)."""

    name = "unsharp_mask"
    cost_note = "separable depthwise Gaussian conv; the add/multiply is not counted"

    def __init__(self, sigma: float = 1.0, amount: float = 0.5) -> None:
        super().__init__()
        self.sigma, self.amount = sigma, amount

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        blurred = separable_blur(images, gaussian_kernel1d(self.sigma))
        return images + self.amount * (images - blurred)


class CLAHE(NumpyEnhancer):
    """Contrast-limited adaptive histogram equalisation of the L channel of CIELAB (OpenCV, 16-bit L)."""

    name = "clahe"

    def __init__(self, clip_limit: float = 2.0, tile_grid: int = 8) -> None:
        super().__init__()
        self.clip_limit, self.tile_grid = clip_limit, tile_grid

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)  # float32: L in [0, 100]
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tile_grid, self.tile_grid))
        lightness = np.clip(np.rint(lab[..., 0] * 655.35), 0, 65535).astype(np.uint16)
        lab[..., 0] = clahe.apply(lightness).astype(np.float32) / 655.35
        return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
