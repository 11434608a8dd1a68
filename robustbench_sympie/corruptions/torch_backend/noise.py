"""ImageNet-C noise corruptions, batched: gaussian, shot (Poisson), impulse (salt & pepper), speckle.

Same parameter tables and arithmetic as ``imagecorruptions`` (values in [0, 1], clipped, times 255);
the random numbers come from :mod:`.rng` (per-sample streams), so pixels differ from the numpy
reference but follow the same distributions.
"""

from __future__ import annotations

import functools
import math

import torch

from . import rng
from .base import register_torch_corruption

_GAUSSIAN = (0.08, 0.12, 0.18, 0.26, 0.38)
_SHOT = (60, 25, 12, 5, 3)
_IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)
_SPECKLE = (0.15, 0.2, 0.35, 0.45, 0.6)


@register_torch_corruption("gaussian_noise")
def gaussian_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _GAUSSIAN[severity - 1]
    noise = rng.normal(seeds, tuple(images.shape[1:]), stream=1, device=images.device)
    return (images / 255.0 + noise * c).clamp_(0, 1) * 255


@register_torch_corruption("speckle_noise")
def speckle_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _SPECKLE[severity - 1]
    noise = rng.normal(seeds, tuple(images.shape[1:]), stream=1, device=images.device)
    x = images / 255.0
    return (x + x * noise * c).clamp_(0, 1) * 255


_GUIDE_BINS = 16  # guide-table bins per tabulated k: about 1% of the bins hold a CDF step


@functools.lru_cache(maxsize=16)
def _poisson_tables(c: int, device_str: str) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Poisson CDFs of lambda = level / 255 * c for the 256 grey levels (256 x K float64, flattened) and the
    guide table of the inverse-CDF method (256 x M int16, flattened). For level l and u-bin j = [j/M, (j+1)/M):
    g = the first k with CDF_k > j / M; the entry is g when no CDF value falls inside the bin (then g is the
    answer for every u of the bin) and ``-1 - g`` when one does (the bin's draws step on from g)."""
    kmax = int(c + 15 * math.sqrt(c) + 25)  # CDF beyond kmax differs from 1 by < 1e-15
    lam = torch.arange(256, dtype=torch.float64) / 255.0 * c
    k = torch.arange(kmax, dtype=torch.float64)
    logpmf = torch.special.xlogy(k[None, :], lam[:, None]) - lam[:, None] - torch.lgamma(k + 1)[None, :]
    cdf = torch.cumsum(logpmf.exp(), dim=1).clamp_(max=1.0)
    cdf[:, -1] = 1.0  # the search always stops inside the table
    bins = 1 << (_GUIDE_BINS * kmax - 1).bit_length()  # a power of two: u * bins is exact (float32 or float64)
    edges = torch.arange(bins + 1, dtype=torch.float64) / bins
    first = torch.searchsorted(cdf, edges.expand(256, -1).contiguous(), right=True)
    settled = first[:, 1:] == first[:, :-1]
    guide = torch.where(settled, first[:, :-1], -1 - first[:, :-1]).to(torch.int16)
    return (cdf.reshape(-1).contiguous().to(device_str), guide.reshape(-1).contiguous().to(device_str),
            kmax, bins)


def poisson_from_uniform(level: torch.Tensor, u: torch.Tensor, c: int) -> torch.Tensor:
    """Poisson(level / 255 * c) draws by inverse CDF, ``level`` integer grey levels, ``u`` float32 or float64
    uniforms: the count of k with CDF_k <= u (int32, exact: ``u`` is compared in float64), read from the guide
    table, plus a few batched steps for the draws whose bin holds a CDF step."""
    cdf, guide, kmax, bins = _poisson_tables(c, str(level.device))
    shape = level.shape
    level, u = level.reshape(-1).to(torch.int32), u.reshape(-1)
    k = guide.index_select(0, (u * bins).to(torch.int32).clamp_(max=bins - 1).add_(level * bins)).to(torch.int32)
    unsettled = (k < 0).nonzero().squeeze(1)
    if unsettled.numel():
        steps = -1 - k.index_select(0, unsettled)
        base = level.index_select(0, unsettled) * kmax
        u_open = u.index_select(0, unsettled)
        active = torch.arange(unsettled.numel(), device=k.device)
        while active.numel():
            active = active[cdf.index_select(0, base.index_select(0, active) + steps.index_select(0, active))
                            <= u_open.index_select(0, active)]
            steps.index_add_(0, active, torch.ones_like(active, dtype=steps.dtype))
        k.index_copy_(0, unsettled, steps)
    return k.view(shape)


@register_torch_corruption(
    "shot_noise",
    note="Poisson draws by exact inverse CDF from per-sample float32 uniforms (tabulated per grey level); "
         "same distribution as numpy's poisson, different numbers.")
def shot_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _SHOT[severity - 1]
    # float32 uniforms (on the CPU multiples of 2^-24: each count's probability within 2^-24 of Poisson's): one
    # 32-bit word per value where float64 takes two, which made the draws half of shot_noise's time on the CPU
    u = rng.uniform(seeds, tuple(images.shape[1:]), stream=1, device=images.device)
    counts = poisson_from_uniform(images.round().to(torch.int32), u, c)
    return (counts.to(torch.float32) / float(c)).clamp_(0, 1) * 255


@register_torch_corruption(
    "impulse_noise",
    note="salt & pepper as skimage random_noise('s&p', amount=c, salt_vs_pepper=0.5), per channel value, from "
         "one uniform u per value: flipped where u < c, salt where u < c / 2 (given u < c, u / c is uniform, so "
         "salt and pepper are equally likely and independent of the rest); different random numbers.")
def impulse_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _IMPULSE[severity - 1]
    u = rng.uniform(seeds, tuple(images.shape[1:]), stream=1, device=images.device)
    return images.masked_fill(u < c / 2, 255.0).masked_fill_((u >= c / 2) & (u < c), 0.0)
