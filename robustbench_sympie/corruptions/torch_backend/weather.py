"""Batched torch versions of ImageNet-C's weather corruptions (snow, frost, fog) and of spatter.

Each follows ``imagecorruptions-imaug``'s ``corruptions.py`` step by step, with its per-severity tables.
Random draws come from :mod:`.rng` (one stream per draw), so pixels differ from the numpy reference but
the distributions are the same; the deterministic steps after the draws are reproduced exactly or as
close as float arithmetic allows (see each ``note=``). Deterministic stages are exposed as ``*_from``
functions taking the random draws explicitly, which the tests compare against the reference's own code.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from . import rng
from .base import conv2d, register_torch_corruption
from .blur import motion_blur_by_shifts

# -- shared helpers -------------------------------------------------------------------------------------------------


def _grey(images: torch.Tensor) -> torch.Tensor:
    """cv2's RGB2GRAY weights, ``B x 1 x H x W``."""
    return 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]


def _gaussian_kernel(sigma: float, device, dtype=torch.float32, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's 1-D Gaussian (radius ``int(truncate * sigma + 0.5)``), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * x * x / float(sigma) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def _separable(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate ``B x 1 x H x W`` with ``k`` along both axes, padding with ``mode``."""
    r = k.numel() // 2
    x = conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    return conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))


def _skimage_gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``skimage.filters.gaussian(x, sigma)`` on a ``B x 1 x H x W`` float batch (mode 'nearest', truncate 4)."""
    return _separable(x, _gaussian_kernel(sigma, x.device, x.dtype), "replicate")


def _box3(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(x, (3, 3)) (BORDER_REFLECT_101) on ``B x 1 x H x W``, unrounded."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


# -- snow -----------------------------------------------------------------------------------------------------------

_SNOW = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8),
         (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
         (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
         (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
         (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]


def clipped_zoom_layer(layer: torch.Tensor, zoom: float) -> torch.Tensor:
    """The reference's ``clipped_zoom`` on ``B x 1 x H x W``: central crop, scipy ``zoom(order=1)``.

    scipy's order-1 zoom maps output ``o`` to input ``o * (in - 1) / (out - 1)``, i.e. bilinear with
    ``align_corners=True``; output size ``round(in * zoom)`` (which may exceed ``H``, as in the reference).
    """
    h, w = layer.shape[-2:]
    ch0, ch1 = int(math.ceil(h / float(zoom))), int(math.ceil(w / float(zoom)))
    top0, top1 = (h - ch0) // 2, (w - ch1) // 2
    crop = layer[..., top0:top0 + ch0, top1:top1 + ch1]
    size = (int(round(ch0 * zoom)), int(round(ch1 * zoom)))
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=True)


def motion_blur_layer(layer: torch.Tensor, radius: int, sigma: float, angle_deg: torch.Tensor) -> torch.Tensor:
    """The reference's ``_motion_blur`` (imagecorruptions-imaug's kernel code) with one angle per sample.

    ``sum_i k_i * layer[clamp(y - dy_i), clamp(x - dx_i)]`` with ``k`` a half Gaussian over ``2 radius + 1``
    taps and ``(dy_i, dx_i) = -ceil(i (sin, cos)(angle) - 0.5)``; edge pixels are replicated (the reference's
    ``shift``), and taps stop once a shift reaches the image size (its ``break``): motion_blur's own sum of
    shifted copies (:func:`.blur.motion_blur_by_shifts`: views on the CPU, flat gathers on other devices).
    """
    return motion_blur_by_shifts(layer, radius, sigma, angle_deg)


def snow_from(images: torch.Tensor, severity: int, noise: torch.Tensor, angle_deg: torch.Tensor) -> torch.Tensor:
    """Snow given the draws: ``noise`` standard normals ``B x H x W`` and the blur angle per sample."""
    c = _SNOW[severity - 1]
    h, w = images.shape[-2:]
    x = images / 255.0
    layer = (c[0] + c[1] * noise.to(images.device, torch.float32))[:, None]
    layer = clipped_zoom_layer(layer, c[2])
    layer = torch.where(layer < c[3], torch.zeros_like(layer), layer).clamp_(0, 1)
    layer = motion_blur_layer(layer, radius=c[4], sigma=c[5], angle_deg=angle_deg)
    layer = torch.round(layer * 255).clamp_(0, 255) / 255.0  # np.round(...).astype(uint8) / 255
    layer = layer[..., :h, :w]
    # c6 x + (1 - c6) max(x, 1.5 grey + 0.5), then + layer + flipped layer: in place, the same arithmetic
    brightened = torch.maximum(x, _grey(x).mul_(1.5).add_(0.5)).mul_(1 - c[6])
    x = x.mul_(c[6]).add_(brightened).add_(layer).add_(torch.flip(layer, dims=(-2, -1)))
    return x.clamp_(0, 1).mul_(255)


@register_torch_corruption(
    "snow",
    note="reference layer pipeline reproduced (scipy order-1 zoom as align-corners bilinear, the imaug motion-blur "
         "kernel with edge replication, rounding, grey blend), in float32 where the reference uses float64 (given the "
         "same draws: mean abs diff <= 0.002, a few pixels flip the 0.5 threshold); normal noise and angle drawn "
         "from torch streams",
    # its CPU motion blur is summed per sample: chunks of 4 images share the rest (0.59-0.65 ms per image on 2
    # threads, against 0.75-0.76 in chunks of 2)
    chunk_pixels=4 * 224 * 224)
def snow(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    noise = rng.normal(seeds, (h, w), stream=0, device=images.device)
    angle = rng.uniform(seeds, (), stream=1, device=images.device, dtype=torch.float64) * 90.0 - 135.0
    return snow_from(images, severity, noise, angle)


# -- frost ----------------------------------------------------------------------------------------------------------

_FROST = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


@lru_cache(maxsize=1)
def _frost_sources() -> tuple:
    """The six frost images of the imagecorruptions package as RGB uint8 arrays (loaded once)."""
    import importlib.resources

    import cv2

    folder = importlib.resources.files("imagecorruptions") / "frost"
    out = []
    for name in _FROST_FILES:
        with importlib.resources.as_file(folder / name) as path:
            out.append(cv2.imread(str(path)))  # BGR, as the reference reads it
    return tuple(out)


def _frost_scale(frost_shape: tuple[int, int], shape: tuple[int, int]) -> float:
    """The reference's scaling factor (before its 1.1 margin)."""
    fh, fw = frost_shape
    h, w = shape
    if fh >= h and fw >= w:
        return 1.0
    if fh < h and fw >= w:
        return h / fh
    if fh >= h and fw < w:
        return w / fw
    return max(h / fh, w / fw)


@lru_cache(maxsize=16)
def _frost_bank(device_str: str, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The six frost images resized as the reference does for an ``h x w`` image, padded into one tensor.

    Returns (``6 x Hmax x Wmax x 3`` uint8 RGB on the device, ``6 x 2`` int64 sizes). cv2's INTER_CUBIC
    resize runs here once per image size and device (cached), never per batch.
    """
    import cv2

    resized = []
    for frost in _frost_sources():
        s = _frost_scale(frost.shape[:2], (h, w)) * 1.1
        new = (int(math.ceil(frost.shape[1] * s)), int(math.ceil(frost.shape[0] * s)))
        resized.append(cv2.resize(frost, dsize=new, interpolation=cv2.INTER_CUBIC)[..., ::-1].copy())
    hmax = max(r.shape[0] for r in resized)
    wmax = max(r.shape[1] for r in resized)
    bank = torch.zeros((len(resized), hmax, wmax, 3), dtype=torch.uint8)
    for i, r in enumerate(resized):
        bank[i, :r.shape[0], :r.shape[1]] = torch.from_numpy(r)
    sizes = torch.tensor([r.shape[:2] for r in resized], dtype=torch.int64)
    return bank.to(device_str), sizes.to(device_str)


def frost_from(images: torch.Tensor, severity: int, index: torch.Tensor, top: torch.Tensor,
               left: torch.Tensor) -> torch.Tensor:
    """Frost given the draws: frost image ``index`` and crop offsets ``top``/``left`` per sample."""
    c = _FROST[severity - 1]
    h, w = images.shape[-2:]
    bank, _ = _frost_bank(str(images.device), h, w)
    dev = images.device
    rows = top.to(dev)[:, None] + torch.arange(h, device=dev)[None, :]
    cols = left.to(dev)[:, None] + torch.arange(w, device=dev)[None, :]
    crops = bank[index.to(dev)[:, None, None], rows[:, :, None], cols[:, None, :]]  # B x H x W x 3
    crops = crops.permute(0, 3, 1, 2).to(images.dtype)
    return (c[0] * images + c[1] * crops).clamp_(0, 255)


@register_torch_corruption(
    "frost",
    note="same frost images, same cv2 INTER_CUBIC rescale (done once per image size and cached) and same "
         "uniform choice of image and crop offsets, drawn from torch streams: exact given the draws")
def frost(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    dev = images.device
    _, sizes = _frost_bank(str(dev), h, w)
    index = rng.randint(seeds, 0, len(_FROST_FILES), (), stream=0, device=dev)
    u_top = rng.uniform(seeds, (), stream=1, device=dev, dtype=torch.float64)
    u_left = rng.uniform(seeds, (), stream=2, device=dev, dtype=torch.float64)
    span = sizes[index]  # np.random.randint(0, size - h): uniform over 0..size-h-1
    top = torch.floor(u_top * (span[:, 0] - h).clamp(min=1)).long()
    left = torch.floor(u_left * (span[:, 1] - w).clamp(min=1)).long()
    return frost_from(images, severity, index, top, left)


# -- fog ------------------------------------------------------------------------------------------------------------

_FOG = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)]


def plasma_fractal(seeds: torch.Tensor, mapsize: int, wibbledecay: float, device,
                   stream: int = 0) -> torch.Tensor:
    """The reference's diamond-square ``plasma_fractal``, batched: ``B x mapsize x mapsize`` in [0, 1].

    Same recurrences (``np.roll`` as ``torch.roll``), same wibble schedule (``wibble * U(-wibble, wibble)``,
    wibble from 100 divided by ``wibbledecay`` each level). All uniforms of a sample come from one draw of
    its stream ``stream`` (``3 * sum n^2`` numbers over the levels' ``n x n`` grids), consumed level by level.

    The reference writes each level into strided slices of the full map; here each level works on compact
    ``n x n`` grids (the level's corners, its diamond points and its two kinds of edge points) and interleaves
    them into the next level's ``2n x 2n`` corners: the same float operations in the same order, so the same
    values, with fewer strided operations, whose Python-side work holds the interpreter lock (fog's CPU chunks run
    on several threads).
    """
    if mapsize < 1 or mapsize & (mapsize - 1):
        raise ValueError(f"plasma_fractal needs a power-of-two map size, got {mapsize}")
    b = len(seeds)
    levels = mapsize.bit_length() - 1  # grids of 1, 2, 4, ..., mapsize / 2 corners per side
    uniforms = rng.uniform(seeds, (3 * sum(4 ** level for level in range(levels)),), stream=stream, device=device)
    offset = 0
    wibble = 100.0

    def wibbledmean(array: torch.Tensor) -> torch.Tensor:
        nonlocal offset
        count = array.shape[1] * array.shape[2]
        u = uniforms[:, offset:offset + count].view_as(array)
        offset += count
        return array / 4 + wibble * (u * (2 * wibble) - wibble)

    corners = torch.zeros((b, 1, 1), dtype=torch.float32, device=device)  # the map's points at (i s, j s)
    for _ in range(levels):
        n = corners.shape[1]
        acc = corners + torch.roll(corners, shifts=-1, dims=1)
        acc = acc + torch.roll(acc, shifts=-1, dims=2)
        diamonds = wibbledmean(acc)  # at (i s + s/2, j s + s/2)
        row_edges = wibbledmean(diamonds + torch.roll(diamonds, 1, dims=1)  # at (i s, j s + s/2)
                                + corners + torch.roll(corners, -1, dims=2))
        column_edges = wibbledmean(diamonds + torch.roll(diamonds, 1, dims=2)  # at (i s + s/2, j s)
                                   + corners + torch.roll(corners, -1, dims=1))
        finer = corners.new_empty((b, n, 2, n, 2))  # (row, row parity, column, column parity)
        finer[:, :, 0, :, 0] = corners
        finer[:, :, 0, :, 1] = row_edges
        finer[:, :, 1, :, 0] = column_edges
        finer[:, :, 1, :, 1] = diamonds
        corners = finer.view(b, 2 * n, 2 * n)
        wibble /= wibbledecay
    m = corners - corners.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def next_power_of_2(x: int) -> int:
    return 1 if x == 0 else 2 ** (x - 1).bit_length()


def fog_from(images: torch.Tensor, severity: int, plasma: torch.Tensor) -> torch.Tensor:
    """Fog given the plasma map (``B x M x M``, cropped to ``H x W`` here as the reference does)."""
    c = _FOG[severity - 1]
    h, w = images.shape[-2:]
    x = images / 255.0
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    x += c[0] * plasma[:, None, :h, :w].to(x.dtype)  # in place: the same arithmetic, fewer large allocations
    return x.mul_(max_val).div_(max_val + c[0]).clamp_(0, 1).mul_(255)


@register_torch_corruption(
    "fog",
    note="diamond-square plasma as in the reference (map size: next power of two of the largest side, "
         "so 256 for 224 images and larger maps for larger images, cropped to H x W), uniform wibble drawn "
         "from torch streams; exact given the draws",
    # the plasma is a few hundred small operations per chunk whatever its size (about 45 per level), each holding the
    # interpreter lock for its Python-side work: chunks of 8 images took 0.41 ms per image on 2 threads, against
    # 0.66 for 2 and 1.2 for 1
    chunk_pixels=8 * 224 * 224)
def fog(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    mapsize = next_power_of_2(max(h, w, 3))
    plasma = plasma_fractal(seeds, mapsize, _FOG[severity - 1][1], images.device)
    return fog_from(images, severity, plasma)


# -- spatter --------------------------------------------------------------------------------------------------------

_SPATTER = [(0.65, 0.3, 4, 0.69, 0.6, 0),
            (0.65, 0.3, 3, 0.68, 0.6, 0),
            (0.65, 0.3, 2, 0.68, 0.5, 0),
            (0.65, 0.3, 1, 0.65, 1.5, 1),
            (0.67, 0.4, 1, 0.65, 1.5, 1)]

_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)


def canny(gray_u8: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``cv2.Canny(img, low, high)`` (aperture 3, L1 gradient) on ``B x 1 x H x W`` integer-valued floats.

    Sobel with replicated borders, OpenCV's integer tangent tests for non-maximum suppression (strict on
    one side, as OpenCV), then hysteresis: 8-connected weak pixels joined to a strong one, by iterated
    3 x 3 dilation until nothing changes. Returns a bool edge map.
    """
    x = F.pad(gray_u8, (1, 1, 1, 1), mode="replicate")
    sx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype, device=x.device).view(1, 1, 3, 3)
    gx = conv2d(x, sx)
    gy = conv2d(x, sx.transpose(-1, -2))
    mag = gx.abs() + gy.abs()
    mp = F.pad(mag, (1, 1, 1, 1))  # OpenCV's magnitude buffer has zero borders
    h, w = mag.shape[-2:]

    def at(dy: int, dx: int) -> torch.Tensor:
        return mp[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    ax = gx.abs().int()  # |g| <= 1020: every product below fits in int32
    ay = gy.abs().int() << 15
    tg22x = ax * _TG22
    tg67x = tg22x + (ax << 16)
    horizontal = ay < tg22x
    vertical = (~horizontal) & (ay > tg67x)
    diagonal = ~(horizontal | vertical)
    s_neg = (gx.int() ^ gy.int()) < 0  # s = -1
    nms_h = (mag > at(0, -1)) & (mag >= at(0, 1))
    nms_v = (mag > at(-1, 0)) & (mag >= at(1, 0))
    # s = -1: up-right (j - step + 1) and down-left (j + step - 1); s = 1: up-left and down-right
    nms_d = torch.where(s_neg, (mag > at(-1, 1)) & (mag > at(1, -1)), (mag > at(-1, -1)) & (mag > at(1, 1)))
    keep = (horizontal & nms_h) | (vertical & nms_v) | (diagonal & nms_d)
    candidate = keep & (mag > low)
    edges = candidate & (mag > high)
    cur = edges
    while True:
        for _ in range(8):
            cur = _dilate3(cur) & candidate
        nxt = _dilate3(cur) & candidate
        if torch.equal(nxt, cur):
            return cur
        cur = nxt


_DIST_SCALE = 1 << 16
_DIST_A = float(round(1.0 * _DIST_SCALE))
_DIST_B = float(round(1.4 * _DIST_SCALE))
_DIST_C = float(round(2.1969 * _DIST_SCALE))


def chamfer_distance(zero: torch.Tensor, cap: float = 20.0) -> torch.Tensor:
    """``cv2.distanceTransform(src, DIST_L2, 5)`` (distance to the nearest zero pixel) truncated at ``cap``, by
    parallel relaxations (:func:`chamfer_distance_relax`) on every device. On the CPU's 2-image chunks they ran 4x
    faster than OpenCV's own two raster passes done row by row (about 900 small operations per image; 3.4 against
    13.6 ms per image on one thread), which this module used on the CPU before, with the same distances."""
    return chamfer_distance_relax(zero, cap)


def chamfer_distance_relax(zero: torch.Tensor, cap: float = 20.0) -> torch.Tensor:
    """The chamfer distance of :func:`chamfer_distance` truncated at ``cap``, by parallel relaxations.

    OpenCV's 5 x 5 chamfer metric (steps 1, 1.4 and 2.1969 in 16-bit fixed point, the outside far away) as
    the shortest-path fixpoint, iterated in parallel: a path of length <= ``cap`` has at most ``cap`` steps,
    so ``cap`` relaxations give every truncated distance exactly (each relaxation groups steps of one cost
    into 3-wide minima; windows that include longer moves at a lower cost never go below a true path).
    """
    big = (cap + 1) * _DIST_SCALE
    d = torch.where(zero, torch.zeros_like(zero, dtype=torch.float32), torch.full_like(zero, big, dtype=torch.float32))
    h, w = d.shape[-2:]
    for it in range(int(math.ceil(cap))):
        p = F.pad(d, (2, 2, 2, 2), value=big)
        r = torch.minimum(torch.minimum(p[..., :, 0:w + 2], p[..., :, 1:w + 3]), p[..., :, 2:w + 4])  # (H+4, W+2)
        c = torch.minimum(torch.minimum(p[..., 0:h + 2, :], p[..., 1:h + 3, :]), p[..., 2:h + 4, :])  # (H+2, W+4)
        orth = torch.minimum(r[..., 2:2 + h, 1:1 + w], c[..., 1:1 + h, 2:2 + w]) + _DIST_A
        diag = torch.minimum(torch.minimum(r[..., 1:1 + h, 1:1 + w], r[..., 3:3 + h, 1:1 + w]),
                             r[..., 2:2 + h, 1:1 + w]) + _DIST_B
        knight = torch.minimum(torch.minimum(c[..., 1:1 + h, 0:w], c[..., 1:1 + h, 4:4 + w]),
                               torch.minimum(r[..., 0:h, 1:1 + w], r[..., 4:4 + h, 1:1 + w])) + _DIST_C
        new = torch.minimum(torch.minimum(d, orth), torch.minimum(diag, knight))  # never above big
        if it % 4 == 3 and torch.equal(new, d):
            break
        d = new
    return (d / _DIST_SCALE).clamp_(max=cap)


def _dilate3(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 dilation of a bool ``... x H x W`` map (outside counts False)."""
    p = F.pad(x.to(torch.uint8), (1, 1, 1, 1)).bool()
    r = p[..., :, :-2] | p[..., :, 1:-1] | p[..., :, 2:]
    return r[..., :-2, :] | r[..., 1:-1, :] | r[..., 2:, :]


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """``cv2.equalizeHist`` per sample on ``B x 1 x H x W`` integer-valued floats in 0..255."""
    b = x.shape[0]
    flat = x.reshape(b, -1).long()
    total = flat.shape[1]
    hist = torch.zeros((b, 256), dtype=torch.long, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    first = (hist > 0).long().argmax(dim=1, keepdim=True)
    first_count = hist.gather(1, first)
    scale = (255.0 / (total - first_count).clamp(min=1).to(torch.float32))
    lut = torch.round((hist.cumsum(1) - first_count).to(torch.float32) * scale).clamp_(0, 255)
    lut = torch.where(first_count == total, first.expand(-1, 256).to(torch.float32), lut)
    return lut.gather(1, flat).to(x.dtype).view_as(x)


def spatter_from(images: torch.Tensor, severity: int, noise: torch.Tensor) -> torch.Tensor:
    """Spatter given the draws: ``noise`` standard normals ``B x H x W``."""
    c = _SPATTER[severity - 1]
    x = images / 255.0
    dev = images.device
    liquid = (c[0] + c[1] * noise.to(dev, torch.float32))[:, None]
    liquid = _skimage_gaussian(liquid, c[2])
    liquid = torch.where(liquid < c[3], torch.zeros_like(liquid), liquid)
    if c[5] == 0:
        liquid_u8 = torch.trunc(liquid * 255).clamp_(0, 255).float()  # (l * 255).astype(uint8)
        edges = canny(liquid_u8, 50, 150)
        dist = chamfer_distance(edges)  # 255 - edges is zero exactly on the edges
        dist = torch.trunc(_box3(dist))  # blur, astype(uint8)
        dist = equalize_hist(dist)
        ker = torch.tensor([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=dist.dtype, device=dev).view(1, 1, 3, 3)
        dist = conv2d(F.pad(dist, (1, 1, 1, 1), mode="reflect"), ker).clamp_(0, 255)  # filter2D, CV_8U
        dist = torch.round(_box3(dist))  # blur on uint8 rounds
        m = liquid_u8 * dist
        m = m / m.amax(dim=(2, 3), keepdim=True).clamp(min=1e-12) * c[4]
        color = torch.tensor([175 / 255.0, 238 / 255.0, 238 / 255.0], device=dev).view(1, 3, 1, 1)
        return (x + m * color).clamp_(0, 1) * 255
    m = (liquid > c[3]).to(torch.float32)
    m = _skimage_gaussian(m, c[4])
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    color = torch.tensor([63 / 255.0, 42 / 255.0, 20 / 255.0], device=dev).view(1, 3, 1, 1) * m
    return (x * (1 - m) + color).clamp_(0, 1) * 255


@register_torch_corruption(
    "spatter",
    note="both branches reproduced: skimage gaussian (nearest borders), cv2.Canny (Sobel 3, L1, OpenCV's "
         "tangent tests, hysteresis by iterated dilation), cv2.distanceTransform(L2, 5) as the exact 5x5 chamfer "
         "(OpenCV's two-pass scan with rows vectorised on CPU, parallel relaxations elsewhere), box blurs, "
         "equalizeHist, filter2D; normal noise drawn from torch streams. Exact given the draws up to float32 "
         "rounding at thresholds (rare one-level differences)")
def spatter(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    noise = rng.normal(seeds, (h, w), stream=0, device=images.device)
    return spatter_from(images, severity, noise)
