"""Batched torch versions of the ten ImageNet-C-Bar corruptions.

Reference: ``robustbench_sympie.corruptions.imagenet_c_bar``.

The reference's formulas step by step, in float64, with one value per sample wherever the reference draws a
random parameter. Random draws come from :mod:`.rng` (one stream per draw) with the reference's
distributions; draws whose size itself is random (rays of a sparkle, cells of the checkerboard, the
iteration count of the plasma) are drawn at their largest size and the first ones used, or masked, which
leaves every distribution unchanged. Given the same parameters the outputs equal the reference's (the
``*_from`` functions take them explicitly; the tests compare them).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..imagenet_c_bar import PARAMETERS
from . import rng
from .base import conv2d, register_torch_corruption

_WHITE = 255.0
_GREY = 128.0
_PERLIN_SIZE = 256
_PERLIN_OFFSET = 16 * 256
_CAUSTIC_INTENSITY = 0.005
_LENS_ETA = 4.0
_F64 = torch.float64


def _p(name: str, severity: int) -> float:
    return PARAMETERS[name][severity - 1]


def _scaled(value: float, maxval: float) -> float:
    return float(value) * maxval / 10.0


def _side(images: torch.Tensor) -> float:
    return math.sqrt(images.shape[-2] * images.shape[-1])


def _u(seeds, stream: int, device, shape: tuple[int, ...] = ()) -> torch.Tensor:
    """``B x *shape`` float64 uniforms in [0, 1)."""
    return rng.uniform(seeds, shape, stream=stream, device=device, dtype=_F64)


def _grid(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates, ``1 x H x 1`` and ``1 x 1 x W`` float64."""
    h, w = images.shape[-2:]
    dev = images.device
    return (torch.arange(h, device=dev, dtype=_F64).view(1, h, 1),
            torch.arange(w, device=dev, dtype=_F64).view(1, 1, w))


def _col(values: torch.Tensor) -> torch.Tensor:
    """Per-sample values as ``B x 1 x 1``."""
    return values.view(-1, 1, 1)


# -- spectral noise ---------------------------------------------------------------------------------------------------


def _radial_frequency(h: int, w: int, device) -> torch.Tensor:
    length = math.sqrt(h * w)
    ky = torch.fft.fftfreq(h, device=device, dtype=_F64) * length
    kx = torch.fft.fftfreq(w, device=device, dtype=_F64) * length
    return torch.hypot(ky[:, None], kx[None, :])


def spectral_noise_from(amplitude: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
    """``B x C x H x W`` unit-std real fields from ``phases`` (``B x C x H x W`` in [0, 2 pi))."""
    field = torch.fft.ifft2(amplitude * torch.exp(1j * phases)).real
    return field / field.std(dim=(-2, -1), keepdim=True, correction=0)


def blue_noise_sample_from(images: torch.Tensor, severity: int, phases: torch.Tensor) -> torch.Tensor:
    threshold = _scaled(_p("blue_noise_sample", severity), 3.0) - 2.5
    noise = spectral_noise_from(_radial_frequency(*images.shape[-2:], images.device), phases)
    return images * (noise > threshold)


@register_torch_corruption("blue_noise_sample", note="exact given the uniform Fourier phases (torch streams)")
def blue_noise_sample(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    phases = _u(seeds, 0, images.device, (1, *images.shape[-2:])) * (2 * math.pi)
    return blue_noise_sample_from(images, severity, phases)


def brownish_noise_from(images: torch.Tensor, severity: int, phases: torch.Tensor) -> torch.Tensor:
    intensity = _scaled(_p("brownish_noise", severity), 64.0)
    amplitude = 1.0 / (_radial_frequency(*images.shape[-2:], images.device) ** 2 + 1.0)
    return images + intensity * spectral_noise_from(amplitude, phases)


@register_torch_corruption("brownish_noise", note="exact given the uniform Fourier phases (torch streams)")
def brownish_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    phases = _u(seeds, 0, images.device, (3, *images.shape[-2:])) * (2 * math.pi)
    return brownish_noise_from(images, severity, phases)


# -- periodic patterns ------------------------------------------------------------------------------------------------


def single_frequency_greyscale_from(images: torch.Tensor, severity: int, freq_x: torch.Tensor,
                                    freq_y: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    intensity = _scaled(_p("single_frequency_greyscale", severity), 196.0)
    ys, xs = _grid(images)
    wave = torch.sin(xs * _col(freq_x) + ys * _col(freq_y) + _col(phase))
    return images + intensity * wave[:, None]


@register_torch_corruption("single_frequency_greyscale", note="exact given the frequencies and phase (torch streams)")
def single_frequency_greyscale(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    dev = images.device
    magnitude = _u(seeds, 0, dev) * (2 * math.pi) - math.pi
    other = (_u(seeds, 1, dev) * 2 - 1) * magnitude.abs()
    swap = _u(seeds, 2, dev) < 0.5  # rng.permutation of the pair
    phase = _u(seeds, 3, dev) * (2 * math.pi)
    freq_x = torch.where(swap, other, magnitude)
    freq_y = torch.where(swap, magnitude, other)
    return single_frequency_greyscale_from(images, severity, freq_x, freq_y, phase)


def cocentric_sine_waves_from(images: torch.Tensor, severity: int, x0, y0, freq, amplitude,
                              ring_width) -> torch.Tensor:
    intensity = _scaled(_p("cocentric_sine_waves", severity), 128.0)
    ys, xs = _grid(images)
    dx, dy = xs - _col(x0), ys - _col(y0)
    angle = torch.atan2(dx, dy) * _col(freq)
    radius = torch.hypot(dx, dy) + torch.sin(angle) * _col(amplitude)
    saw = torch.remainder(radius, _col(ring_width)) / _col(ring_width) - 0.5
    return images + intensity * saw[:, None]


@register_torch_corruption("cocentric_sine_waves",
                           note="exact given centre, frequency, amplitude, width (torch streams)")
def cocentric_sine_waves(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    dev, side = images.device, _side(images)
    centre = _u(seeds, 0, dev, (2,))
    x0, y0 = centre[:, 0] * w, centre[:, 1] * h
    freq = _u(seeds, 1, dev) * 10.0
    amplitude = _u(seeds, 2, dev) * (side / 10)
    ring_width = (_u(seeds, 3, dev) * (side / 10)).clamp(min=1e-6)
    return cocentric_sine_waves_from(images, severity, x0, y0, freq, amplitude, ring_width)


def plasma_noise_from(images: torch.Tensor, severity: int, time: torch.Tensor, iterations: torch.Tensor,
                      sharpness: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    intensity = _scaled(_p("plasma_noise", severity), 64.0)
    ys, xs = _grid(images)
    t = _col(time)
    x, y = xs / _col(scale), ys / _col(scale)
    x, y = x.expand(-1, images.shape[-2], -1), y.expand(-1, -1, images.shape[-1])
    freq = 1.0
    damping = 1.0
    gain = torch.ones_like(t)
    for k in range(int(iterations.max().item()) if iterations.numel() else 0):
        active = _col(iterations) > k
        r0 = torch.cos(y * freq + t / damping) / gain
        r1 = torch.sin(x * freq + t / damping) / gain
        r0, r1 = r0 - 0.3 * r1, r1 + 0.3 * r0
        x, y = torch.where(active, x + r0, x), torch.where(active, y + r1, y)
        freq, damping, gain = freq * 1.93, damping * 1.15, gain * (2.25 - _col(sharpness))
    red, blue = torch.sin(x - t), torch.sin(y + t)
    green = torch.sin((x + y + torch.sin(t)) * 0.5)
    noise = torch.stack([red, green, blue], dim=1)
    return (1 - intensity / 255) * images + intensity * noise


@register_torch_corruption("plasma_noise", note="exact given time, iterations, sharpness and scale (torch streams)")
def plasma_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    dev = images.device
    time = _u(seeds, 0, dev) * (6 * math.pi)
    iterations = rng.randint(seeds, 4, 7, (), stream=1, device=dev)
    sharpness = _u(seeds, 2, dev) * 0.5 + 0.5
    scale = (_u(seeds, 3, dev) * 0.125 + 0.075) * _side(images)
    return plasma_noise_from(images.double(), severity, time, iterations, sharpness, scale)


# -- Perlin turbulence -------------------------------------------------------------------------------------------------


def perlin_tables_from(perm: torch.Tensor, grads_int: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gradient tables (``B x 65536`` x and y) from a permutation ``B x 256`` and integer gradients
    ``B x 256 x 2`` in -256..255, as the reference's ``perlin_tables``."""
    grads = grads_int.to(_F64) / _PERLIN_SIZE
    norms = torch.linalg.vector_norm(grads, dim=-1, keepdim=True)
    unit = torch.tensor([1.0, 0.0], dtype=_F64, device=grads.device)
    grads = torch.where(norms > 0, grads / torch.where(norms > 0, norms, torch.ones_like(norms)), unit)
    doubled = torch.cat([perm, perm], dim=1)
    index = perm[:, :, None] + torch.arange(_PERLIN_SIZE, device=perm.device)
    corner = doubled.gather(1, index.view(perm.shape[0], -1))
    return grads[..., 0].gather(1, corner), grads[..., 1].gather(1, corner)


def _perlin(x: torch.Tensor, y: torch.Tensor, tables) -> torch.Tensor:
    """Classic 2-D gradient noise for ``x`` (``1 x H x 1``) and ``y`` (``1 x 1 x W``), per-sample tables."""
    gx, gy = tables
    b = gx.shape[0]
    tx, ty = x + _PERLIN_OFFSET, y + _PERLIN_OFFSET
    bx0 = torch.floor(tx).long() % _PERLIN_SIZE
    by0 = torch.floor(ty).long() % _PERLIN_SIZE
    bx1, by1 = (bx0 + 1) % _PERLIN_SIZE, (by0 + 1) % _PERLIN_SIZE
    rx0, ry0 = tx - torch.floor(tx), ty - torch.floor(ty)
    rx1, ry1 = rx0 - 1.0, ry0 - 1.0
    h, w = x.shape[1], y.shape[2]

    def dot(bx, by, rx, ry):
        flat = (bx * _PERLIN_SIZE + by).expand(1, h, w).reshape(1, -1).expand(b, -1)
        return rx * gx.gather(1, flat).view(b, h, w) + ry * gy.gather(1, flat).view(b, h, w)

    sx, sy = rx0 * rx0 * (3.0 - 2.0 * rx0), ry0 * ry0 * (3.0 - 2.0 * ry0)
    u, v = dot(bx0, by0, rx0, ry0), dot(bx1, by0, rx1, ry0)
    a = u + sx * (v - u)
    u, v = dot(bx0, by1, rx0, ry1), dot(bx1, by1, rx1, ry1)
    bb = u + sx * (v - u)
    return 1.5 * (a + sy * (bb - a))


def perlin_noise_from(images: torch.Tensor, severity: int, perm: torch.Tensor, grads_int: torch.Tensor) -> torch.Tensor:
    alpha = _scaled(_p("perlin_noise", severity), 0.5)
    tables = perlin_tables_from(perm, grads_int)
    cell = 32 * _side(images) / 224
    rows, cols = _grid(images)
    rows, cols = rows / cell, cols / cell
    total = torch.zeros((images.shape[0], images.shape[-2], images.shape[-1]), dtype=_F64, device=images.device)
    freq = 1.0
    while freq <= 16.0:
        total = total + _perlin(freq * rows, freq * cols, tables).abs() / freq
        freq *= 2.0
    value = (0.5 * total + 0.5).clamp(0.0, 1.0)
    return (1 - alpha) * images.double() + _WHITE * alpha * value[:, None]


@register_torch_corruption("perlin_noise", note="exact given the lattice permutation and gradients (torch streams)")
def perlin_noise(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    dev = images.device
    perm = torch.argsort(rng.uniform(seeds, (_PERLIN_SIZE,), stream=0, device=dev), dim=1)
    grads = rng.randint(seeds, -_PERLIN_SIZE, _PERLIN_SIZE, (_PERLIN_SIZE, 2), stream=1, device=dev)
    return perlin_noise_from(images, severity, perm, grads)


# -- sparkles ----------------------------------------------------------------------------------------------------------


def _starburst(images: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, lengths: torch.Tensor, rays: torch.Tensor,
               exponent: float) -> torch.Tensor:
    """The reference's ``starburst`` per sample: ``B x H x W`` weights; ``lengths`` ``B x R`` (first ``rays`` used)."""
    ys, xs = _grid(images)
    dy, dx = ys - _col(cy), xs - _col(cx)
    r = _col(rays).to(_F64)
    position = (torch.atan2(dx, dy) + math.pi) / (2 * math.pi) * r
    index = torch.floor(position).long()
    frac = position - index
    b, h, w = position.shape
    rays_l = _col(rays).long()
    start = lengths.gather(1, (index % rays_l).view(b, -1)).view(b, h, w)
    end = lengths.gather(1, ((index + 1) % rays_l).view(b, -1)).view(b, h, w)
    length = start + frac * (end - start)
    falloff = (length ** 2 / (dy ** 2 + dx ** 2 + 1e-4)) ** exponent
    return ((1.0 - (frac - 0.5) ** 2) * falloff).clamp(0.0, 1.0)


def sparkles_from(images: torch.Tensor, severity: int, centres: torch.Tensor, rays: torch.Tensor,
                  normals: torch.Tensor) -> torch.Tensor:
    """``centres`` ``B x 5 x 2`` (row, column), ``rays`` ``B x 5``, ``normals`` ``B x 5 x R`` (first ``rays`` used)."""
    radius = _scaled(_p("sparkles", severity), 0.1) * _side(images)
    out = images.double()
    for k in range(centres.shape[1]):
        lengths = (radius * (1.0 + 0.25 * normals[:, k])).clamp(min=1.0)
        weight = _starburst(images, centres[:, k, 0], centres[:, k, 1], lengths, rays[:, k], 1.0)[:, None]
        out = out + weight * (_WHITE - out)
    return out


@register_torch_corruption("sparkles", note="exact given centres, ray counts and ray lengths (torch streams)")
def sparkles(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    dev = images.device
    centres = _u(seeds, 0, dev, (5, 2)) * torch.tensor([h, w], dtype=_F64, device=dev)
    rays = rng.randint(seeds, 50, 200, (5,), stream=1, device=dev)
    normals = rng.normal(seeds, (5, 199), stream=2, device=dev, dtype=_F64)
    return sparkles_from(images, severity, centres, rays, normals)


def inverse_sparkles_from(images: torch.Tensor, severity: int, centre: torch.Tensor, rays: torch.Tensor,
                          normals: torch.Tensor) -> torch.Tensor:
    amount = 100.0 - _scaled(_p("inverse_sparkles", severity), 65.0)
    radius = 0.25 * _side(images)
    lengths = radius * (1.0 + 0.25 * normals)
    weight = _starburst(images, centre[:, 0], centre[:, 1], lengths, rays, (100.0 - amount) / 50.0)[:, None]
    return _WHITE + weight * (images.double() - _WHITE)


@register_torch_corruption("inverse_sparkles", note="exact given centre, ray count and ray lengths (torch streams)")
def inverse_sparkles(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    dev = images.device
    centre = (_u(seeds, 0, dev, (2,)) * 0.5 + 0.25) * torch.tensor([h, w], dtype=_F64, device=dev)
    rays = rng.randint(seeds, 50, 200, (), stream=1, device=dev)
    normals = rng.normal(seeds, (199,), stream=2, device=dev, dtype=_F64)
    return inverse_sparkles_from(images, severity, centre, rays, normals)


# -- checkerboard_cutout -----------------------------------------------------------------------------------------------


def _max_cells(h: int, w: int) -> int:
    return int(4 * max(h, w) // max(0.1 * math.sqrt(h * w), 1.0)) + 1


def checkerboard_cutout_from(images: torch.Tensor, severity: int, angle: torch.Tensor, scale: torch.Tensor,
                             uniforms: torch.Tensor) -> torch.Tensor:
    """``uniforms`` ``B x M x M``: the top-left ``cells x cells`` block is the reference's ``rng.random``."""
    h, w = images.shape[-2:]
    fraction = _scaled(_p("checkerboard_cutout", severity), 1.0)
    cells = torch.floor(4 * max(h, w) / scale).long()  # int(4 * max // scale)
    m = uniforms.shape[-1]
    ys, xs = _grid(images)
    a, s = _col(angle), _col(scale)
    u = (torch.cos(a) * ys + torch.sin(a) * xs) / s
    v = (-torch.sin(a) * ys + torch.cos(a) * xs) / s
    same_parity = torch.remainder(torch.floor(u), 2) == torch.remainder(torch.floor(v), 2)
    c = _col(cells)
    flat = (torch.remainder(torch.trunc(u).long(), c) * m + torch.remainder(torch.trunc(v).long(), c))
    picked = uniforms.reshape(images.shape[0], -1).gather(1, flat.view(images.shape[0], -1)).view_as(u) < fraction
    return torch.where((same_parity & picked)[:, None], torch.full_like(images, _GREY), images)


@register_torch_corruption("checkerboard_cutout", note="exact given angle, scale and the cell choices (torch streams)")
def checkerboard_cutout(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    dev = images.device
    angle = _u(seeds, 0, dev) * (2 * math.pi)
    scale = (_u(seeds, 1, dev) * 0.15 + 0.1) * _side(images)
    scale = scale.clamp(min=1.0)
    m = _max_cells(h, w)
    uniforms = _u(seeds, 2, dev, (m, m))
    return checkerboard_cutout_from(images, severity, angle, scale, uniforms)


# -- caustic_refraction ------------------------------------------------------------------------------------------------


def _caustic_pattern(h: int, w: int, time: torch.Tensor, size: torch.Tensor, device) -> torch.Tensor:
    rows = torch.arange(h, device=device, dtype=_F64).view(1, h, 1)
    cols = torch.arange(w, device=device, dtype=_F64).view(1, 1, w)
    p0 = torch.remainder(rows / _col(size), 1.0) * 2 * math.pi - 250
    p1 = torch.remainder(cols / _col(size), 1.0) * 2 * math.pi - 250
    sin0, cos0, sin1, cos1 = torch.sin(p0), torch.cos(p0), torch.sin(p1), torch.cos(p1)
    light = torch.ones((time.shape[0], h, w), dtype=_F64, device=device)
    for n in range(5):
        t = _col(time) * (1.0 - 3.5 / (n + 1))
        st, ct = torch.sin(t), torch.cos(t)
        i0 = p0 + (ct * cos0 + st * sin0) + (st * cos1 + ct * sin1)
        i1 = p1 + (st * cos1 - ct * sin1) + (ct * cos0 - st * sin0)
        sin0, cos0, sin1, cos1 = torch.sin(i0), torch.cos(i0), torch.sin(i1), torch.cos(i1)
        length = torch.hypot(p0 * _CAUSTIC_INTENSITY / (sin0 * ct + cos0 * st),
                             p1 * _CAUSTIC_INTENSITY / (cos1 * ct - sin1 * st))
        light = light + 1.0 / length
    c = 1.17 - (light / 5.0) ** 1.4
    return (c.abs() ** 8.0).clamp(0.0, 1.0)


def _gaussian_reflect(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter(x, sigma) (mode 'reflect' = symmetric, truncate 4) on ``B x H x W``."""
    radius = int(4.0 * sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=_F64, device=x.device)
    k = torch.exp(-0.5 * k * k / sigma ** 2)
    k = k / k.sum()
    h, w = x.shape[-2:]

    def sym(n: int) -> torch.Tensor:
        idx = torch.arange(-radius, n + radius, device=x.device)
        idx = torch.where(idx < 0, -idx - 1, idx)
        return torch.where(idx >= n, 2 * n - 1 - idx, idx)

    y = x[:, :, sym(w)]
    y = conv2d(y[:, None], k.view(1, 1, 1, -1))[:, 0]
    y = y[:, sym(h), :]
    return conv2d(y[:, None], k.view(1, 1, -1, 1))[:, 0]


def _neighbour(v: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``v[y + dy, x + dx]``, 0 outside (``B x H x W``)."""
    p = F.pad(v, (1, 1, 1, 1))
    h, w = v.shape[-2:]
    return p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def _bilinear_zero(image: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """``image`` (``B x C x H x W``) sampled at pixel coordinates, neighbours outside counting 0."""
    b, c, h, w = image.shape
    flat = image.reshape(b, c, h * w)
    y0, x0 = torch.floor(py), torch.floor(px)
    fy, fx = py - y0, px - x0
    y0, x0 = y0.long(), x0.long()
    out = torch.zeros((b, c, *py.shape[1:]), dtype=image.dtype, device=image.device)
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).view(b, 1, -1).expand(-1, c, -1)
        out = out + (weight * inside)[:, None] * flat.gather(2, index).view(b, c, *py.shape[1:])
    return out


def caustic_refraction_from(images: torch.Tensor, severity: int, time: torch.Tensor,
                            size: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    value = _p("caustic_refraction", severity)
    lens_scale, lighting = _scaled(value, 0.5 * _side(images)), _scaled(value, 2.0)
    lens = _gaussian_reflect(_caustic_pattern(h, w, time.to(_F64), size.to(_F64), images.device), 1.0)
    up, down = _neighbour(lens, -1, 0), _neighbour(lens, 1, 0)
    left, right = _neighbour(lens, 0, -1), _neighbour(lens, 0, 1)
    gy, gx = down - up, right - left
    norm = torch.sqrt(gy ** 2 + gx ** 2 + 1.0)
    ny, nx, nz = gy / norm, gx / norm, 1.0 / norm
    factor = torch.sqrt(1.0 - (ny ** 2 + nx ** 2) / _LENS_ETA ** 2) - nz / _LENS_ETA
    factor = torch.where(nz >= 1.0 - 1e-3, torch.zeros_like(factor), factor)
    off_y, off_x = ny * factor, nx * factor
    ys, xs = _grid(images)
    sampled = _bilinear_zero(images.double() / 255.0, ys + torch.round(off_y * lens_scale, decimals=3),
                             xs + torch.round(off_x * lens_scale, decimals=3))
    lit = sampled + ((left - right) + (down - up))[:, None] * lighting
    return lit.clamp(0.0, 1.0) * 255.0


@register_torch_corruption("caustic_refraction", note="exact given time and tile size (torch streams)")
def caustic_refraction(images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
    dev = images.device
    time = _u(seeds, 0, dev) * 1.5 + 0.5
    size = (_u(seeds, 1, dev) * 0.5 + 0.75) * _side(images)
    return caustic_refraction_from(images, severity, time, size)
