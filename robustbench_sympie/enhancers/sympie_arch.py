"""SyMPIE's architecture: the NEM (:class:`SympieNEM`) and the DWM (:func:`warp`), with no weights handling.

The module layout of :class:`SympieNEM` matches the released checkpoints key for key, so they load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: normalisation the released NEM and DWM work in (independent of the downstream model's own)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

KERNEL_SIZE = 5
#: smallest side the NEM accepts: three AvgPool2d(5, stride 4, pad 1) stages need 43 -> 11 -> 3 -> 1 pixels
NEM_MIN_SIDE = 43
#: 9 colour-matrix entries, 3 shifts, 25 kernel taps
NUM_WARP_PARAMS = 9 + 3 + KERNEL_SIZE * KERNEL_SIZE


# ------------------------------------------------------------------------------------------------
# NEM
# ------------------------------------------------------------------------------------------------
class _DownResidualBlock(nn.Module):
    """Average-pool by 4, then two 3x3 convolutions with a residual from the first one."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=5, stride=4, padding=1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.conv1(self.pool(x))
        y = self.conv2(self.relu(self.bn1(skip)))
        return skip + self.relu(self.bn2(y))


class SympieNEM(nn.Module):
    """The parameter estimator: normalised ``B x 3 x H x W`` image -> ``B x 37`` warp parameters.

    State-dict keys match the released checkpoints: ``backbone.{0,1}`` (stem conv, BN),
    ``backbone.{3,4,5}.{conv1,bn1,conv2,bn2}`` (blocks) and ``out`` (the final linear layer).
    A fresh module is initialised to the identity warp (see :meth:`reset_to_identity`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            _DownResidualBlock(64, 128),
            _DownResidualBlock(128, 256),
            _DownResidualBlock(256, 512),
        )
        self.gpool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(512, NUM_WARP_PARAMS)
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Zero the output weights and set the bias to the identity warp, so the NEM predicts "no change"."""
        self.out.weight.zero_()
        self.out.bias.copy_(identity_warp_params(1, dtype=self.out.bias.dtype)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.gpool(self.backbone(x)).flatten(1)
        return self.out(features)


# ------------------------------------------------------------------------------------------------
# DWM
# ------------------------------------------------------------------------------------------------
def identity_warp_params(
    batch_size: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """``B x 37`` parameters of the identity warp: identity matrix, zero shift, centred delta kernel."""
    kernel = torch.zeros(KERNEL_SIZE, KERNEL_SIZE, dtype=dtype, device=device)
    kernel[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1
    shift = torch.zeros(3, dtype=dtype, device=device)
    matrix = torch.eye(3, dtype=dtype, device=device)
    return torch.cat([matrix.flatten(), shift, kernel.flatten()]).expand(batch_size, -1).clone()


def split_warp_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``B x 37`` parameters into the matrix ``B x 3 x 3``, shift ``B x 3`` and kernel ``B x 5 x 5``."""
    if params.ndim != 2 or params.shape[1] != NUM_WARP_PARAMS:
        raise ValueError(f"warp parameters must be B x {NUM_WARP_PARAMS}, got {tuple(params.shape)}")
    batch = params.shape[0]
    matrix = params[:, :9].reshape(batch, 3, 3)
    shift = params[:, 9:12]
    kernel = params[:, 12:].reshape(batch, KERNEL_SIZE, KERNEL_SIZE)
    return matrix, shift, kernel


def _shift_and_mix(x: torch.Tensor, matrix: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x + s`` then ``out[c] = sum_d M[d, c] x[d]`` for every image of the batch."""
    return torch.einsum("bdhw,bdc->bchw", x + shift[:, :, None, None], matrix)


def warp_reference(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The DWM as released: one depthwise convolution per image in a Python loop (tests and benchmarks only)."""
    matrix, shift, kernel = split_warp_params(params)
    mixed = _shift_and_mix(x, matrix, shift)
    out = torch.empty_like(mixed)
    for b in range(mixed.shape[0]):
        weight = kernel[b].expand(3, 1, KERNEL_SIZE, KERNEL_SIZE)
        out[b] = F.conv2d(mixed[b], weight, padding=KERNEL_SIZE // 2, groups=3)
    return out


def warp(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The DWM on a normalised ``B x 3 x H x W`` batch, with one grouped convolution for the whole batch."""
    matrix, shift, kernel = split_warp_params(params)
    mixed = _shift_and_mix(x, matrix, shift)
    batch, channels, height, width = mixed.shape
    weight = kernel[:, None].expand(batch, channels, KERNEL_SIZE, KERNEL_SIZE)
    weight = weight.reshape(batch * channels, 1, KERNEL_SIZE, KERNEL_SIZE)
    out = F.conv2d(
        mixed.reshape(1, batch * channels, height, width), weight, padding=KERNEL_SIZE // 2, groups=batch * channels
    )
    return out.reshape(batch, channels, height, width)
