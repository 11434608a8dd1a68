"""ImageNet-C blur corruptions, batched: defocus, gaussian, glass, motion, zoom (and shared filter helpers).

Parameter tables, border modes and arithmetic follow ``imagecorruptions``: ``disk()`` kernels blurred
as ``cv2.GaussianBlur`` does, ``cv2.filter2D``'s reflect-101 border, skimage/scipy ``gaussian`` with
``mode='nearest'`` and ``truncate=4``, the reference motion kernel (shifted copies with edge
replication), ``clipped_zoom`` with scipy ``zoom(order=1)`` coordinates. Large kernels run as FFT
convolutions of the padded image (exact up to float rounding); small separable ones as conv2d.
"""

from __future__ import annotations

import functools
import math
import threading

import torch
import torch.nn.functional as F

from . import rng
from .base import register_torch_corruption

# ----------------------------------------------------------------------------- padding and filters


def _pad_index(n: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """Source indices of a length-``n`` axis padded by ``before``/``after`` (any pad size)."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "replicate":  # scipy 'nearest', cv2 BORDER_REPLICATE
        return i.clamp(0, n - 1)
    if n == 1:
        return torch.zeros_like(i)
    if mode == "reflect101":  # cv2 BORDER_REFLECT_101, torch 'reflect', scipy 'mirror'
        period = 2 * (n - 1)
        i = i.remainder(period)
        return torch.where(i >= n, period - i, i)
    if mode == "symmetric":  # scipy/skimage 'reflect', numpy 'symmetric', cv2 BORDER_REFLECT
        period = 2 * n
        i = i.remainder(period)
        return torch.where(i >= n, period - 1 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad2d(x: torch.Tensor, ph: int, pw: int, mode: str) -> torch.Tensor:
    """Pad the last two axes by ``ph`` rows and ``pw`` columns on each side with ``mode``."""
    h, w = x.shape[-2:]
    if x.dim() == 4 and mode in ("replicate", "reflect101") and (mode == "replicate" or (ph < h and pw < w)):
        return F.pad(x, (pw, pw, ph, ph), mode="replicate" if mode == "replicate" else "reflect")
    if mode == "symmetric" and ph <= h and pw <= w:
        if ph:
            x = torch.cat([x[..., :ph, :].flip(-2), x, x[..., h - ph:, :].flip(-2)], dim=-2)
        if pw:
            x = torch.cat([x[..., :pw].flip(-1), x, x[..., w - pw:].flip(-1)], dim=-1)
        return x
    if ph:  # any pad size, any rank
        x = x.index_select(-2, _pad_index(h, ph, ph, mode, x.device))
    if pw:
        x = x.index_select(-1, _pad_index(w, pw, pw, mode, x.device))
    return x


@functools.lru_cache(maxsize=64)
def _gaussian_kernel1d(sigma: float, truncate: float) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d's kernel (float64)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    phi = torch.exp(-0.5 / (float(sigma) ** 2) * x ** 2)
    return phi / phi.sum()


def _conv1d_axis(x: torch.Tensor, kernel: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate axis ``dim`` (-2 rows, -1 columns) of ``x`` (... x H x W) with a short 1-D ``kernel``.

    A weighted sum of shifted views of the padded image: on CPU about 10x faster than a depthwise conv2d.
    """
    r = (kernel.numel() - 1) // 2
    n = x.shape[dim]
    xp = pad2d(x, r, 0, mode) if dim == -2 else pad2d(x, 0, r, mode)
    weights = [float(v) for v in kernel.tolist()]
    out = xp.narrow(dim, 0, n) * weights[0]
    for j in range(1, len(weights)):
        out.add_(xp.narrow(dim, j, n), alpha=weights[j])
    return out


def gaussian_filter(x: torch.Tensor, sigma, mode: str = "replicate", truncate: float = 4.0, *,
                    by_fft: bool | None = None) -> torch.Tensor:
    """scipy ``gaussian_filter`` over the last two axes (``sigma`` a float or (sigma_h, sigma_w)), as separable
    shifted-view sums or (``by_fft``; by default for kernels over 9 taps, over 15 in float64) one FFT of the padded
    image, whose float32 rounding matches the reference's more often."""
    sh, sw = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    if by_fft is None:  # (shifted sums were measured 3x faster than the FFT for 15 taps in float64)
        by_fft = max(sh, sw) * truncate > (7.5 if x.dtype == torch.float64 else 4.5)
    if by_fft:
        kh, kw = _gaussian_kernel1d(float(sh), truncate), _gaussian_kernel1d(float(sw), truncate)
        return fft_filter2d(x, torch.outer(kh, kw)[None], mode, fast_size=x.dtype == torch.float64)
    x = _conv1d_axis(x, _gaussian_kernel1d(float(sh), truncate), -2, mode)
    return _conv1d_axis(x, _gaussian_kernel1d(float(sw), truncate), -1, mode)


def fft_filter2d(x: torch.Tensor, kernels: torch.Tensor, mode: str, fast_size: bool = False) -> torch.Tensor:
    """``cv2.filter2D``-style correlation (anchor at the centre) of B x C x H x W ``x`` with odd-sized
    ``kernels`` (1 x kh x kw shared, or B x kh x kw one per sample), border ``mode``, by FFT of the padded
    image. ``fast_size`` zero-pads it further to a 5-smooth FFT size (:func:`fft_size`): 2-3x faster FFTs
    whose rounding differs (used for float64 fields, where it changes no float32 value seen, for motion blur off
    the CPU and for defocus blur; gaussian filters of float32 images keep the unpadded size, whose rounding
    happens to match the reference's more often)."""
    b, c, h, w = x.shape
    kh, kw = kernels.shape[-2:]
    rh, rw = (kh - 1) // 2, (kw - 1) // 2
    xp = pad2d(x, rh, rw, mode)
    hp, wp = xp.shape[-2:]
    if fast_size:  # no wrap-around of the circular convolution reaches the kept [0, h) x [0, w)
        hp, wp = fft_size(hp), fft_size(wp)
    if kernels.shape[0] == 1:  # shared kernel: its spectrum is computed once per size (CPU chunks reuse it)
        key = (kernels.cpu().numpy().tobytes(), kh, kw, hp, wp, x.dtype, str(x.device))
        with _SHARED_SPECTRA_LOCK:  # corrupt_batch's CPU chunks call this from several threads
            kernel_spec = _SHARED_SPECTRA.get(key)
            if kernel_spec is None:
                if len(_SHARED_SPECTRA) >= _SHARED_SPECTRA_MAX:
                    _SHARED_SPECTRA.pop(next(iter(_SHARED_SPECTRA)))
                kernel_spec = _SHARED_SPECTRA[key] = _kernel_spectrum(kernels, hp, wp, x)
    else:
        kernel_spec = _kernel_spectrum(kernels, hp, wp, x)
    out = torch.fft.irfft2(torch.fft.rfft2(xp, s=(hp, wp)) * kernel_spec[:, None], s=(hp, wp))
    return out[..., :h, :w]


#: spectra of shared ``fft_filter2d`` kernels, by (kernel bytes, kernel size, FFT size, dtype, device)
_SHARED_SPECTRA: dict[tuple, torch.Tensor] = {}
_SHARED_SPECTRA_MAX = 32
_SHARED_SPECTRA_LOCK = threading.Lock()


def _kernel_spectrum(kernels: torch.Tensor, hp: int, wp: int, like: torch.Tensor) -> torch.Tensor:
    """rfft2 of ``kernels`` (N x kh x kw) flipped and rolled to the origin of an ``hp x wp`` grid (dtype and
    device of ``like``): the circular convolution with it is the correlation ``out[n] = sum_a K[a] xp[n + a]``."""
    kh, kw = kernels.shape[-2:]
    g = torch.zeros((kernels.shape[0], hp, wp), dtype=like.dtype, device=like.device)
    g[:, :kh, :kw] = kernels.flip(-2, -1).to(like.dtype)
    g = torch.roll(g, shifts=(-(kh - 1), -(kw - 1)), dims=(-2, -1))
    return torch.fft.rfft2(g)


@functools.lru_cache(maxsize=256)
def fft_size(n: int) -> int:
    """The smallest 5-smooth number (2^a 3^b 5^c) >= ``n``: FFTs of such sizes run 2-3x faster than of sizes
    with large prime factors (238 = 2 x 7 x 17 for a 224-pixel side padded by 7)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


def gathered_sum(padded: torch.Tensor, weights: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
                  h: int, w: int) -> torch.Tensor:
    """``out[b] = sum_t weights[b, t] * padded[b, :, tops[b, t]:+h, lefts[b, t]:+w]`` for ``B x 1 x H' x W'``
    ``padded``, one flat gather over the batch per tap."""
    b, _, _, row_stride = padded.shape
    flat = padded.reshape(b, -1)
    ys = torch.arange(h, device=padded.device)
    xs = torch.arange(w, device=padded.device)
    positions = (ys[:, None] * row_stride + xs[None, :]).view(1, -1)
    offsets = tops * row_stride + lefts  # B x taps
    out = torch.zeros((b, h * w), dtype=padded.dtype, device=padded.device)
    for t in range(weights.shape[1]):
        out += weights[:, t, None] * flat.gather(1, positions + offsets[:, t, None])
    return out.view(b, 1, h, w)


def shifted_view_sum(padded: torch.Tensor, weights: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
                     h: int, w: int) -> torch.Tensor:
    """``out[b] = sum_t weights[b, t] * padded[b, :, tops[b, t]:+h, lefts[b, t]:+w]``, one in-place
    multiply-add of a shifted view per tap and sample (on the CPU faster than :func:`gathered_sum`, whose
    products it rounds differently: float32 rounding apart). Few, large operations matter on CPU chunks run on
    several threads: each operation holds the interpreter lock for its Python-side work; a separate product
    and sum per tap made snow 1.4x slower on 2 threads."""
    out = torch.zeros((*padded.shape[:2], h, w), dtype=padded.dtype, device=padded.device)
    for sample, taps in enumerate(zip(weights.tolist(), tops.tolist(), lefts.tolist(), strict=True)):
        target, source = out[sample], padded[sample]
        for weight, top, left in zip(*taps, strict=True):
            target.add_(source[:, top:top + h, left:left + w], alpha=weight)
    return out


# ----------------------------------------------------------------------------- gaussian blur

_GAUSSIAN_BLUR = (1, 2, 3, 4, 6)


@register_torch_corruption("gaussian_blur")
def gaussian_blur(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    c = _GAUSSIAN_BLUR[severity - 1]
    x = gaussian_filter(images / 255.0, c, "replicate")
    return x.clamp_(0, 1) * 255


# ----------------------------------------------------------------------------- defocus blur

_DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))


@functools.lru_cache(maxsize=8)
def disk_kernel(radius: int, alias_blur: float) -> torch.Tensor:
    """The reference ``disk()``: normalised aliased disk, then cv2.GaussianBlur (reflect-101), float32."""
    if radius <= 8:
        coords = torch.arange(-8, 8 + 1, dtype=torch.float32)
        ksize = 3
    else:
        coords = torch.arange(-radius, radius + 1, dtype=torch.float32)
        ksize = 5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    aliased = ((xx ** 2 + yy ** 2) <= radius ** 2).to(torch.float32)
    aliased /= aliased.sum()
    # cv2.getGaussianKernel(ksize, sigma) for sigma > 0 (computed in double, used as float32)
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * alias_blur ** 2))
    g = (g / g.sum()).to(torch.float32)
    out = _conv1d_axis(aliased[None, None], g, -2, "reflect101")
    out = _conv1d_axis(out, g, -1, "reflect101")
    return out[0, 0]


@register_torch_corruption("defocus_blur")
def defocus_blur(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    radius, alias = _DEFOCUS[severity - 1]
    kernel = disk_kernel(radius, alias).to(images.device)
    # crop the all-zero border of the kernel (small radii sit in a 17 x 17 frame)
    nz = (kernel != 0).nonzero()
    m = int(max((nz - (kernel.shape[0] - 1) // 2).abs().max().item(), 1))
    cen = (kernel.shape[0] - 1) // 2
    kernel = kernel[cen - m:cen + m + 1, cen - m:cen + m + 1]
    # a 5-smooth FFT size, as cv2.filter2D's own DFT path uses (240 for 224 + 12): 1.7x faster on the CPU than
    # the padded size (236 = 4 x 59); other rounding: on 64 images at severity 1, 3.6 % of the values are one
    # grey level off the reference against 2.5 % (severities 2-5: within 0.1 point of each other)
    x = fft_filter2d(images / 255.0, kernel[None], "reflect101", fast_size=True)
    return x.clamp_(0, 1) * 255


# ----------------------------------------------------------------------------- motion blur

_MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))


def motion_blur_taps(radius: int, sigma: float, angles_deg: torch.Tensor, h: int,
                     w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference ``_motion_blur``'s taps for one angle per sample (``angles_deg``, shape B) on H x W images:
    float64 weights ``k_i`` (a half Gaussian over ``2 radius + 1`` taps, 0 from the first shift that leaves the
    image on, where the reference stops) and the shifts ``(dy_i, dx_i) = -ceil(i (sin, cos)(angle) - 0.5)``,
    each ``B x (2 radius + 1)`` on the angles' device."""
    width = radius * 2 + 1
    i = torch.arange(width, dtype=torch.float64, device=angles_deg.device)
    k = torch.exp(-(i ** 2) / (2 * sigma ** 2)) / (math.sqrt(2 * math.pi) * sigma)
    k = k / k.sum()
    theta = torch.deg2rad(angles_deg.to(torch.float64))
    p0, p1 = width * torch.sin(theta), width * torch.cos(theta)
    hyp = torch.hypot(p0, p1)
    dy = -torch.ceil((i[None] * p0[:, None]) / hyp[:, None] - 0.5).long()
    dx = -torch.ceil((i[None] * p1[:, None]) / hyp[:, None] - 0.5).long()
    inside = ((dy.abs() < h) & (dx.abs() < w)).long().cumprod(dim=1).to(torch.float64)
    return k[None] * inside, dy, dx


def motion_blur_by_shifts(x: torch.Tensor, radius: int, sigma: float, angles_deg: torch.Tensor) -> torch.Tensor:
    """The reference ``_motion_blur`` as the reference computes it, a weighted sum of edge-replicated shifted copies
    (in ``x``'s dtype where the reference sums in float64), one angle per sample (``angles_deg``, shape B). Every
    shift is shorter than ``width``, so each copy is a window of ``x`` padded by ``width`` with replicated edges:
    on the CPU a shifted view per tap and sample (:func:`shifted_view_sum`), elsewhere one flat gather over the
    batch per tap (:func:`gathered_sum`)."""
    h, w = x.shape[-2:]
    width = radius * 2 + 1
    weights, dy, dx = motion_blur_taps(radius, sigma, angles_deg.to(x.device), h, w)
    padded = pad2d(x, width, width, "replicate")
    weighted_sum = shifted_view_sum if x.device.type == "cpu" else gathered_sum
    return weighted_sum(padded, weights.to(x.dtype), width - dy, width - dx, h, w)


def motion_blur_batch(x: torch.Tensor, radius: int, sigma: float, angles_deg: torch.Tensor, *,
                      by_fft: bool | None = None) -> torch.Tensor:
    """The reference ``_motion_blur`` for a batch: sum_i k_i * shift(x, dx_i, dy_i) with edge-replicated
    shifts, one angle per sample (``angles_deg`` float64 of shape B).

    On the CPU by shifted copies (:func:`motion_blur_by_shifts`), which on 2-image chunks on 2 threads ran 2x
    faster than the FFT; elsewhere one FFT correlation of the batch with each sample's kernel (``by_fft`` picks
    one way on any device)."""
    if by_fft is None:
        by_fft = x.device.type != "cpu"
    if not by_fft:
        return motion_blur_by_shifts(x, radius, sigma, angles_deg)
    b, c, h, w = x.shape
    width = radius * 2 + 1
    weights, dy, dx = motion_blur_taps(radius, sigma, angles_deg.to(x.device), h, w)
    # shifted(x)[n] = x[clamp(n - d)]: correlation with a kernel holding k_i at offset -d_i
    pad = width
    kern = torch.zeros((b, 2 * pad + 1, 2 * pad + 1), dtype=torch.float64, device=x.device)
    bidx = torch.arange(b, device=x.device)[:, None].expand(-1, width)
    kern.index_put_((bidx, pad - dy, pad - dx), weights, accumulate=True)
    return fft_filter2d(x, kern.to(x.dtype), "replicate", fast_size=True)


@register_torch_corruption("motion_blur",
                           note="angle ~ U(-45, 45) from the per-sample stream (numpy's draw differs)",
                           # its CPU sums are per sample: larger chunks only share the rest (0.45-0.49 ms per image
                           # on 2 threads in chunks of 4 images, 0.54-0.58 in chunks of 2)
                           chunk_pixels=4 * 224 * 224)
def motion_blur(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    radius, sigma = _MOTION[severity - 1]
    angles = rng.uniform(seeds, (), stream=1, device=images.device, dtype=torch.float64) * 90 - 45
    out = motion_blur_batch(images, radius, sigma, angles)
    return out.clamp_(0, 255)


# ----------------------------------------------------------------------------- zoom blur

_ZOOM = (
    (1.0, 1.11, 0.01),
    (1.0, 1.16, 0.01),
    (1.0, 1.21, 0.02),
    (1.0, 1.26, 0.02),
    (1.0, 1.31, 0.03),
)


def _zoom_factors(severity: int) -> list[float]:
    start, stop, step = _ZOOM[severity - 1]
    n = int(math.ceil((stop - start) / step))
    delta = (start + step) - start  # np.arange fills start + j * delta: 1.3000000000000003, not 1.2999999999999998
    return [start + j * delta for j in range(n)]


def _zoom_coords(n: int, z: float) -> torch.Tensor:
    """``clipped_zoom`` along one axis: the input coordinate (float64) of each of the first n outputs of
    scipy zoom(order=1) applied to the centre crop of ceil(n / z) pixels."""
    ch = int(math.ceil(n / float(z)))
    top = (n - ch) // 2
    out_len = int(round(ch * z))
    scale = (ch - 1) / (out_len - 1) if out_len > 1 else 0.0
    return top + torch.arange(n, dtype=torch.float64) * scale


def clipped_zoom_batch(x: torch.Tensor, z: float) -> torch.Tensor:
    """Reference ``clipped_zoom(x, z)[:H, :W]`` on a B x C x H x W float batch (bilinear grid_sample,
    align_corners=True: pixel centres at -1..1, the coordinates stay inside the image)."""
    b, _, h, w = x.shape
    grid = _zoom_grid(h, w, z, x.dtype, str(x.device))
    return F.grid_sample(x, grid.expand(b, -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=True)


@functools.lru_cache(maxsize=128)
def _zoom_grid(h: int, w: int, z: float, dtype: torch.dtype, device_str: str) -> torch.Tensor:
    """The ``1 x H x W x 2`` sampling grid of :func:`clipped_zoom_batch` (cached: a quarter of zoom_blur's time
    on the CPU went into building it for every call)."""
    gy = 2 * _zoom_coords(h, z) / max(h - 1, 1) - 1
    gx = 2 * _zoom_coords(w, z) / max(w - 1, 1) - 1
    return torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).to(device=device_str, dtype=dtype)[None]


@register_torch_corruption("zoom_blur")
def zoom_blur(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    zooms = _zoom_factors(severity)
    x = images / 255.0  # float32, as the reference
    out = torch.zeros_like(x)
    for z in zooms:
        # scipy's zoom by 1.0 returns the image itself (the first factor of every severity): no resampling
        out += x if z == 1.0 else clipped_zoom_batch(x, z)
    return ((x + out) / (len(zooms) + 1)).clamp_(0, 1) * 255


# ----------------------------------------------------------------------------- glass blur

_GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))


@functools.lru_cache(maxsize=16)
def _glass_interior(h: int, w: int, delta: int, device_str: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat positions 0..h*w-1 (int32) and the mask of those the reference's loop visits (rows and columns
    delta+1..h-delta, delta+1..w-delta)."""
    pos = torch.arange(h * w, device=device_str)
    yy, xx = pos // w, pos % w
    interior = (yy >= delta + 1) & (yy <= h - delta) & (xx >= delta + 1) & (xx <= w - delta)
    return pos.to(torch.int32), interior


def glass_offsets(seeds: torch.Tensor, n: int, delta: int, stream: int,
                  device) -> tuple[torch.Tensor, torch.Tensor]:
    """One iteration's offsets ``(dy, dx)``, each ``B x n`` int32 uniform in ``[-delta, delta)``, from one 31-bit
    word per position (:func:`rng.bits31`): dy from its low 15 bits, dx from the high 16, each field times
    ``2 delta`` shifted down by its width. Exactly uniform for ``2 delta`` a power of two (deltas 1, 2, 4); for
    delta 3 the six values have probabilities 5461 or 5462 in 2^15 (dy) and 10922 or 10923 in 2^16 (dx).
    On the CPU 2.6x faster than two ranged draws per position (glass_blur's draws were a fifth of its time)."""
    bits = rng.bits31(seeds, (n,), stream=stream, device=device)
    span = 2 * delta
    dy = (bits & 0x7FFF).mul_(span).bitwise_right_shift_(15).sub_(delta)
    dx = bits.bitwise_right_shift_(15).mul_(span).bitwise_right_shift_(16).sub_(delta)
    return dy, dx


def glass_shuffle_sources(seeds: torch.Tensor, h: int, w: int, delta: int, iterations: int,
                          device) -> torch.Tensor:
    """Flat source index (B x h*w) of every pixel after the reference's pixel "swap" loop.

    ``_shuffle_pixels_njit_glass_blur`` visits the interior positions p (rows delta+1..h-delta, columns
    delta+1..w-delta) in decreasing raster order and does ``x[p], x[q] = x[q], x[p]`` with q = p + (dy, dx),
    dy, dx uniform in [-delta, delta) (:func:`glass_offsets`). On numpy/numba views that tuple assignment is a
    copy, not a swap: ``x[p] = x[q]`` and ``x[q]`` unchanged. So ``new[p] = new[q]`` if q was visited before p
    (interior and later in raster order), else ``old[q]``: chains of pointers, resolved here in parallel by
    pointer jumping on the pending positions (exact for given offsets), one pass per iteration, composed over
    iterations.
    """
    n = h * w
    b = seeds.shape[0]
    pos, interior = _glass_interior(h, w, delta, str(torch.device(device)))
    offsets = (torch.arange(b, device=device, dtype=torch.int32) * n)[:, None]
    positions = (pos + offsets).reshape(-1)  # int32 indices into the flattened batch (B * h * w)
    exterior = ~interior.repeat(b)
    source = positions
    for it in range(iterations):
        dy, dx = glass_offsets(seeds, n, delta, 1 + it, device)
        step = dy.mul_(w).add_(dx).reshape(-1).masked_fill_(exterior, 0)  # q - p; 0 where p is not visited
        ptr = positions + step
        # q visited before p: both interior and q later in raster order
        pending = (step > 0).logical_and_(exterior.index_select(0, ptr).logical_not_())
        # pending p: ptr[p] is a visited position whose final value p copies; done p: ptr[p] indexes `old`.
        # Jumps run on the pending positions only (about a third at first, a tenth after one jump):
        # ptr[p], pending[p] <- ptr[ptr[p]], pending[ptr[p]], all read first.
        active = pending.nonzero().squeeze(1)
        while active.numel():
            target = ptr.index_select(0, active)
            ptr.index_copy_(0, active, ptr.index_select(0, target))
            still = pending.index_select(0, target)
            pending.index_copy_(0, active, still)
            active = active.masked_select(still)
        source = source.index_select(0, ptr)
    return (source.view(b, n) - offsets).long()


@register_torch_corruption(
    "glass_blur",
    note="the reference's sequential pixel loop (a copy x[p] = x[p + d], not a swap, on numpy views) is "
         "reproduced exactly for given offsets by parallel pointer jumping; the offsets come from the "
         "per-sample streams, not numba's generator.")
def glass_blur(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    sigma, delta, iterations = _GLASS[severity - 1]
    b, c, h, w = images.shape
    x = (gaussian_filter(images / 255.0, sigma, "replicate") * 255).floor_()  # np.uint8(...)
    src = glass_shuffle_sources(seeds, h, w, delta, iterations, images.device)
    x = torch.gather(x.reshape(b, c, h * w), 2, src[:, None, :].expand(-1, c, -1)).reshape(b, c, h, w)
    x = gaussian_filter(x / 255.0, sigma, "replicate")
    return x.clamp_(0, 1) * 255
