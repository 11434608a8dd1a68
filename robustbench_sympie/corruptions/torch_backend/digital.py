"""ImageNet-C digital and colour corruptions, batched: contrast, brightness, saturate, jpeg_compression,
pixelate, elastic_transform.

Same parameter tables and arithmetic as ``imagecorruptions``: float64 in [0, 1] like numpy, skimage's
``rgb2hsv``/``hsv2rgb`` formulas, Pillow's BOX reduction in its 8-bit fixed point followed by its NEAREST
enlargement (bit-exact), libjpeg through torchvision for JPEG, the reference elastic displacement field
(uniform noise smoothed by a ``mode='reflect'`` gaussian) and ``map_coordinates(order=1, mode='reflect')``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import rng
from .base import register_torch_corruption, thread_pool
from .blur import gaussian_filter

# ----------------------------------------------------------------------------- contrast

_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)


@register_torch_corruption("contrast")
def contrast(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _CONTRAST[severity - 1]
    x = images.double() / 255.0
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * c + means).clamp_(0, 1) * 255


# ----------------------------------------------------------------------------- HSV (skimage formulas)


def rgb2hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """skimage.color.rgb2hsv on B x 3 x H x W values in [0, 1] (channel axis 1), the same float operations;
    returns the B x H x W planes (h, s, v)."""
    r, g, b = rgb.unbind(1)
    v = rgb.amax(1)
    delta = v - rgb.amin(1)
    zero = delta == 0
    s = (delta / v).masked_fill_(zero, 0.0)  # v == 0 only where delta == 0
    safe = delta.masked_fill_(zero, 1.0)
    # skimage's hue: (g - b) / delta where red is the max, 2 + (b - r) / delta where green is, 4 + (r - g) /
    # delta where blue is, later assignments winning ties (selections, not gathers: 2x faster on the CPU)
    blue, green = b == v, g == v
    numerator = torch.where(blue, r - g, torch.where(green, b - r, g - b))
    offset = torch.where(blue, 4.0, torch.where(green, 2.0, 0.0)).to(rgb.dtype)
    h = torch.remainder(numerator.div_(safe).add_(offset).div_(6.0), 1.0).masked_fill_(zero, 0.0)
    return h, s, v


def hsv2rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb of the B x H x W planes (h, s, v), the same float operations: B x 3 x H x W."""
    h6 = h * 6
    hi = torch.floor(h6)
    f = h6.sub_(hi)
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = hi.to(torch.uint8).remainder_(6)  # (uint8 cast of values in 0..6) % 6
    # skimage's sector table: r, g, b = (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)
    s1, s2, s3, s4 = sector == 1, sector == 2, sector == 3, sector == 4
    s0 = sector == 0  # sector 5 is what the innermost selections fall back to
    rgb = torch.empty((h.shape[0], 3, *h.shape[1:]), dtype=h.dtype, device=h.device)  # written in place: no stack
    torch.where(s1, q, torch.where(s2 | s3, p, torch.where(s4, t, v)), out=rgb[:, 0])
    torch.where(s0, t, torch.where(s1 | s2, v, torch.where(s3, q, p)), out=rgb[:, 1])
    torch.where(s0 | s1, p, torch.where(s2, t, torch.where(s3 | s4, v, q)), out=rgb[:, 2])
    return rgb


_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
_SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))


@register_torch_corruption("brightness")
def brightness(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _BRIGHTNESS[severity - 1]
    h, s, v = rgb2hsv(images.double().div_(255.0))
    return hsv2rgb(h, s, v.add_(c).clamp_(0, 1)).clamp_(0, 1).mul_(255)


@register_torch_corruption("saturate")
def saturate(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    scale, shift = _SATURATE[severity - 1]
    h, s, v = rgb2hsv(images.double().div_(255.0))
    return hsv2rgb(h, s.mul_(scale).add_(shift).clamp_(0, 1), v).clamp_(0, 1).mul_(255)


# ----------------------------------------------------------------------------- JPEG

_JPEG = (25, 18, 15, 10, 7)


@register_torch_corruption(
    "jpeg_compression",
    note="libjpeg through torchvision.io encode_jpeg/decode_jpeg (on the CPU, on torch's threads) at the severity's "
         "quality with 4:2:0 chroma subsampling, as the reference's Pillow save/open: with this project's "
         "torchvision and Pillow wheels, the same pixels as Pillow (tested on the demo crops, measured on the 800 "
         "sample images at every severity), which other builds of libjpeg(-turbo) need not give.",
    chunk_pixels=None,  # runs the batch's round trips on torch's threads itself
    uint8_io=True)
def jpeg_compression(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    """Whole uint8 batch in, uint8 out: the round trips in one part per torch thread. Pillow's save/open per image
    (what this did on the CPU before) spends about 40 % of its time in Python, holding the interpreter lock, and
    did not scale on threads: on 2 threads at 224 x 224, 0.28 ms per image here against 0.38-0.49 with Pillow."""
    quality = _JPEG[severity - 1]
    batch = list(images.cpu().unbind(0))
    threads = max(1, min(torch.get_num_threads(), len(batch)))
    size = math.ceil(len(batch) / threads)
    chunks = [batch[i:i + size] for i in range(0, len(batch), size)]
    if len(chunks) == 1:
        decoded = _jpeg_round_trip(chunks[0], quality)
    else:  # each image alike, in any chunk
        decoded = [image for part in thread_pool(threads, "jpeg").map(_jpeg_round_trip, chunks, [quality] * len(chunks))
                   for image in part]
    return torch.stack(decoded).to(images.device)


def _jpeg_round_trip(images: list[torch.Tensor], quality: int) -> list[torch.Tensor]:
    from torchvision.io import decode_jpeg, encode_jpeg

    return decode_jpeg(encode_jpeg(images, quality=quality))


# ----------------------------------------------------------------------------- pixelate (Pillow, bit-exact)

_PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c


@functools.lru_cache(maxsize=64)
def _pil_box_windows(in_size: int, out_size: int) -> tuple[list[int], list[int], list[int]]:
    """Pillow's BOX ``precompute_coeffs``: per output pixel the window [start, end) of input pixels with
    weight 1 and the fixed-point weight of each (normalised 1/n, rounded to PRECISION_BITS)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    ss = 1.0 / filterscale
    starts, ends, weights = [], [], []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        ones = [x for x in range(xmin, xmax) if -0.5 < (x - center + 0.5) * ss <= 0.5]
        starts.append(ones[0])
        ends.append(ones[-1] + 1)
        weights.append(int(0.5 + (1.0 / len(ones)) * (1 << _PRECISION_BITS)))
    return starts, ends, weights


def _pil_box_reduce_axis(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    """One Pillow 8-bit BOX resampling pass along ``dim`` of integer-valued float32 ``x`` (exact: window sums
    of at most 2^16 levels are exact in float32, the fixed-point products run in int64)."""
    n = x.shape[dim]
    starts, ends, weights = _pil_box_windows(n, out_size)
    cs = torch.cumsum(x, dim=dim)
    cs = torch.cat([torch.zeros_like(cs.narrow(dim, 0, 1)), cs], dim=dim)
    dev = x.device
    sums = cs.index_select(dim, torch.tensor(ends, device=dev)) - cs.index_select(dim, torch.tensor(starts, device=dev))
    shape = [1] * x.dim()
    shape[dim] = out_size
    kk = torch.tensor(weights, dtype=torch.int64, device=dev).view(shape)
    acc = sums.to(torch.int64) * kk + (1 << (_PRECISION_BITS - 1))
    return (acc >> _PRECISION_BITS).clamp_(0, 255).to(torch.float32)


@functools.lru_cache(maxsize=64)
def _pil_nearest_index(in_size: int, out_size: int) -> list[int]:
    """Pillow's NEAREST resize source indices (ImagingScaleAffine: accumulated double coordinate)."""
    step = in_size / out_size
    xo = step * 0.5
    out = []
    for _ in range(out_size):
        out.append(min(int(xo) if xo >= 0 else -1, in_size - 1))
        xo += step
    return out


def pillow_pixelate(image: np.ndarray, severity: int) -> np.ndarray:
    """The reference on one uint8 image: Pillow's BOX reduction by the severity's factor, NEAREST enlargement."""
    from PIL import Image

    c = _PIXELATE[severity - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


@register_torch_corruption(
    "pixelate", note="on the CPU, the reference's Pillow resizes per image (on torch's threads); elsewhere Pillow's "
                     "fixed-point BOX and NEAREST arithmetic on tensors: the same pixels either way",
    cpu_image_fn=pillow_pixelate)
def pixelate(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _PIXELATE[severity - 1]
    h, w = images.shape[-2:]
    small_w, small_h = int(w * c), int(h * c)
    x = images.round()
    x = _pil_box_reduce_axis(x, small_w, -1)  # Pillow: horizontal pass first, rounded to 8 bits
    x = _pil_box_reduce_axis(x, small_h, -2)
    rows = torch.tensor(_pil_nearest_index(small_h, h), device=images.device)
    cols = torch.tensor(_pil_nearest_index(small_w, w), device=images.device)
    flat = (rows[:, None] * small_w + cols[None, :]).reshape(-1)  # one gather: faster than two index_selects
    return x.reshape(*x.shape[:2], -1)[:, :, flat].view(images.shape)


# ----------------------------------------------------------------------------- elastic transform

_ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)


def grid_sample_reflect(images: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """scipy ``map_coordinates(order=1, mode='reflect')`` of every channel at per-sample coordinates
    ``cy``, ``cx`` (B x H x W): ``grid_sample`` reflecting about the image edges (scipy's half-sample
    symmetric 'reflect'), the same values up to float32 rounding of the grid."""
    h, w = images.shape[-2:]
    grid = torch.empty((*cx.shape, 2), dtype=images.dtype, device=images.device)
    for axis, (coord, size) in enumerate(((cx, w), (cy, h))):  # (2 c + 1) / size - 1 in float64, stored rounded
        grid[..., axis] = coord.mul(2).add_(1).div_(size).sub_(1)  # (a stack of the two was 3x slower on the CPU)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                                           align_corners=False)


@register_torch_corruption(
    "elastic_transform",
    note="displacement noise drawn from the per-sample streams (numpy's uniform draws differ); the same "
         "uniform(-0.005 H, 0.005 H) fields, gaussian(sigma = 0.01 * (H, W), mode='reflect', truncate=3) "
         "smoothing, alpha table and bilinear 'reflect' resampling as the reference.")
def elastic_transform(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    alpha = _ELASTIC_ALPHA[severity - 1]
    b, c, h, w = images.shape
    dev = images.device
    max_d = h * 0.005
    sigma = (h * 0.01, w * 0.01)
    # float32 noise and smoothing (the reference's are float64, its field float32): a random field either way,
    # with half the memory traffic of float64 and one 32-bit draw per value instead of two (1.7x faster on the
    # CPU). The kernel sizes that float64 took as shifted sums (up to 15 taps: 3 sigma <= 7.5, images up to 250
    # pixels) stay shifted sums: at 224 x 224 several times faster than float32's default, the unpadded FFT
    truncate = 3.0
    noise = rng.uniform(seeds, (2, h, w), stream=1, device=dev).mul_(2 * max_d).sub_(max_d)
    field = gaussian_filter(noise, sigma, "symmetric", truncate=truncate,
                            by_fft=max(sigma) * truncate > 7.5).mul_(alpha)
    yy = torch.arange(h, device=dev, dtype=torch.float64).view(1, h, 1)
    xx = torch.arange(w, device=dev, dtype=torch.float64).view(1, 1, w)
    out = grid_sample_reflect(images / 255.0, field[:, 1] + yy, field[:, 0] + xx)  # float64 sums
    return out.clamp_(0, 1) * 255
