"""The torch corruption contract: batched functions on ``B x 3 x H x W`` tensors on any device.

A torch corruption is ``fn(images, severity, seeds) -> images`` where ``images`` is a float32 batch of
RGB values in [0, 255] (the reference code's scale), ``severity`` in 1..5 (one severity per call: the
runner's batches belong to one cell) and ``seeds`` the per-sample int64 seeds from ``sample_seed``;
it returns float values (any range). :func:`corrupt_batch` wraps it: uint8 in, uint8 out, clipped and
truncated to uint8 exactly as ``imagecorruptions`` does (``np.uint8(np.clip(x, 0, 255))``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TorchCorruptionFn = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]

#: name -> batched torch implementation (filled by the modules of this package on import)
TORCH_CORRUPTIONS: dict[str, TorchCorruption] = {}


@dataclass(frozen=True)
class TorchCorruption:
    """A registered torch corruption and a note on how it departs from the reference, if it does."""

    name: str
    fn: TorchCorruptionFn
    note: str = ""

    def __call__(self, images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
        return corrupt_batch(self, images, severity, seeds)


def register_torch_corruption(name: str, note: str = "") -> Callable[[TorchCorruptionFn], TorchCorruptionFn]:
    """Decorator adding ``fn(images_0_255, severity, seeds)`` as the torch version of corruption ``name``."""

    def decorator(fn: TorchCorruptionFn) -> TorchCorruptionFn:
        if name in TORCH_CORRUPTIONS:
            raise ValueError(f"torch corruption {name!r} is registered twice")
        TORCH_CORRUPTIONS[name] = TorchCorruption(name, fn, note)
        return fn

    return decorator


def conv2d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight)`` whose result for one image does not depend on the other images of its batch.

    cuDNN picks its algorithm by shape, and some (Winograd, FFT) round differently from others, so an image's
    pixels could change with the batch size (seen on an H200 for spatter, whose Canny thresholds Sobel responses);
    on CUDA the convolution therefore runs without cuDNN, in PyTorch's own kernel, which computes every image of
    the batch alike (im2col and one GEMM per image). Elsewhere it is plain ``F.conv2d``.
    """
    if x.is_cuda:
        with torch.backends.cudnn.flags(enabled=False):
            return F.conv2d(x, weight)
    return F.conv2d(x, weight)


def corrupt_batch(corruption: TorchCorruption, images: torch.Tensor, severity: int,
                  seeds: torch.Tensor) -> torch.Tensor:
    """Corrupt a uint8 ``B x 3 x H x W`` batch at ``severity``; returns uint8 on the same device."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"torch corruptions take uint8 B x 3 x H x W batches, got {images.dtype} "
                         f"{tuple(images.shape)}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity of {corruption.name!r} must be in 1..5, got {severity!r}")
    seeds = torch.as_tensor(seeds, dtype=torch.int64)
    if seeds.shape != (images.shape[0],):
        raise ValueError(f"one seed per image expected: {images.shape[0]} images, seeds of shape {tuple(seeds.shape)}")
    out = corruption.fn(images.float(), severity, seeds)
    if out.shape != images.shape:
        raise RuntimeError(f"torch corruption {corruption.name!r} changed the batch shape "
                           f"{tuple(images.shape)} -> {tuple(out.shape)}")
    return out.clamp_(0, 255).to(torch.uint8)  # truncation, as np.uint8 does on the reference path
