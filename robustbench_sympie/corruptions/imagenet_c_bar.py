"""The ten ImageNet-C-Bar corruptions (Mintun, Kirillov & Xie, NeurIPS 2021), family ``"imagenet_c_bar"``.

Reimplemented in vectorised numpy from the definitions released with the paper
(facebookresearch/augmentation-corruption, ``imagenet_c_bar/corrupt.py``): the same formulas, random parameter
ranges and severity parameters (``imagenet_c_bar.csv``: severity 1..5 -> the corruption's own parameter, see
:data:`PARAMETERS`), with every random draw taken from the given :class:`numpy.random.Generator`. Pixels therefore
differ from the published JPEGs (other random numbers), not their distribution. Outputs are clipped to 0..255 and
truncated to uint8, as released.

The released code works on 224 x 224 images (``im_size``); here any ``H x W`` works: positions are drawn over
the image's own height and width, and lengths that the release scales with ``im_size`` (radii, wave lengths,
noise scales) scale with ``sqrt(H * W)``, which equals ``im_size`` on square images. Spectral noise uses
frequencies in cycles per image on that side. Three deliberate simplifications, none changing the maths:

* ``blue_noise_sample``/``brownish_noise``: independent uniform Fourier phases (the release mirrors the phase
  array, which is not a Hermitian symmetry either; the real part is taken in both cases);
* ``perlin_noise``: the lattice permutation is uniform (the release's swap loop is slightly biased);
* ``caustic_refraction``: the refraction through the lens normal is evaluated in closed form (same vector).
"""

from __future__ import annotations

import numpy as np

from .base import CORRUPTION_GROUPS, register_corruption

FAMILY = "imagenet_c_bar"
#: severity 1..5 -> the corruption's parameter value, as in the published ``imagenet_c_bar.csv``
PARAMETERS: dict[str, tuple[float, ...]] = {
    "blue_noise_sample": (0.8, 1.6, 2.4, 4.0, 5.6),
    "brownish_noise": (1.0, 2.0, 3.0, 4.0, 5.0),
    "caustic_refraction": (2.35, 3.2, 4.9, 6.6, 9.15),
    "checkerboard_cutout": (2.0, 3.0, 4.0, 5.0, 6.0),
    "cocentric_sine_waves": (3.0, 5.0, 8.0, 9.0, 10.0),
    "inverse_sparkles": (1.0, 2.0, 4.0, 9.0, 10.0),
    "perlin_noise": (4.6, 5.2, 5.8, 7.6, 8.8),
    "plasma_noise": (4.75, 7.0, 8.5, 9.25, 10.0),
    "single_frequency_greyscale": (1.0, 1.5, 2.0, 4.5, 5.0),
    "sparkles": (1.0, 2.0, 3.0, 5.0, 6.0),
}
#: the ten corruptions, in alphabetical order
CBAR_CORRUPTIONS: tuple[str, ...] = tuple(PARAMETERS)

_WHITE = 255.0
_GREY = 128.0
_PERLIN_SIZE = 256  # lattice size of the released Perlin generator
_PERLIN_OFFSET = 16 * 256  # added to coordinates before flooring, as released
_PERLIN_OCTAVES = 16.0  # turbulence: octaves 1, 2, 4, 8, 16
_CAUSTIC_INTENSITY = 0.005
_LENS_ETA = 4.0


def parameter(name: str, severity: int) -> float:
    """The published parameter of corruption ``name`` at ``severity`` 1..5."""
    return PARAMETERS[name][severity - 1]


def scaled(value: float, maxval: float) -> float:
    """The release's ``float_parameter``: a parameter on the 0..10 scale mapped onto ``0..maxval``."""
    return float(value) * maxval / 10.0


def side(image: np.ndarray) -> float:
    """The length that replaces the release's ``im_size``: ``sqrt(H * W)``."""
    return float(np.sqrt(image.shape[0] * image.shape[1]))


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of every pixel (``H x W`` float arrays)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return ys.astype(np.float64), xs.astype(np.float64)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and truncate, as the release's ``np.clip(...).astype(np.uint8)``."""
    return np.clip(values, 0, 255).astype(np.uint8)


# -- spectral noise: blue_noise_sample, brownish_noise --------------------------------------------------------------
def radial_frequency(height: int, width: int) -> np.ndarray:
    """``|k|`` of every FFT bin in cycles per image of side ``sqrt(H * W)`` (integers on square images)."""
    length = np.sqrt(height * width)
    ky = np.fft.fftfreq(height) * length
    kx = np.fft.fftfreq(width) * length
    return np.hypot(ky[:, None], kx[None, :])


def spectral_noise(amplitude: np.ndarray, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """Real part of the inverse FFT of ``amplitude`` with uniform random phases, scaled to unit std (``H x W x C``)."""
    phases = rng.uniform(0.0, 2 * np.pi, size=(channels, *amplitude.shape))
    field = np.fft.ifft2(amplitude * np.exp(1j * phases)).real
    field /= field.std(axis=(1, 2), keepdims=True)
    return np.moveaxis(field, 0, -1)


@register_corruption("blue_noise_sample", family=FAMILY)
def blue_noise_sample(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Black out the pixels where blue noise (amplitude ``|k|``) falls below ``0.3 p - 2.5`` standard deviations."""
    threshold = scaled(parameter("blue_noise_sample", severity), 3.0) - 2.5
    noise = spectral_noise(radial_frequency(*image.shape[:2]), rng)
    return to_uint8(image * (noise > threshold))


@register_corruption("brownish_noise", family=FAMILY)
def brownish_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add per-channel noise of amplitude ``1 / (|k|^2 + 1)``, unit std, times ``6.4 p`` grey levels."""
    intensity = scaled(parameter("brownish_noise", severity), 64.0)
    amplitude = 1.0 / (radial_frequency(*image.shape[:2]) ** 2 + 1.0)
    return to_uint8(image + intensity * spectral_noise(amplitude, rng, channels=image.shape[2]))


# -- periodic patterns: single_frequency_greyscale, cocentric_sine_waves, plasma_noise -------------------------------
@register_corruption("single_frequency_greyscale", family=FAMILY)
def single_frequency_greyscale(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add one grey plane wave ``sin(x f_x + y f_y + phase)`` of amplitude ``19.6 p``."""
    intensity = scaled(parameter("single_frequency_greyscale", severity), 196.0)
    magnitude = rng.uniform(-np.pi, np.pi)
    other = rng.uniform(-abs(magnitude), abs(magnitude))
    freq_x, freq_y = rng.permutation(np.array([magnitude, other]))
    phase = rng.uniform(0.0, 2 * np.pi)
    ys, xs = pixel_grid(*image.shape[:2])
    wave = np.sin(xs * freq_x + ys * freq_y + phase)
    return to_uint8(image + intensity * wave[..., None])


@register_corruption("cocentric_sine_waves", family=FAMILY)
def cocentric_sine_waves(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add grey rings around a random centre, wobbled by an angular sine, as a sawtooth of amplitude ``12.8 p``."""
    height, width = image.shape[:2]
    intensity = scaled(parameter("cocentric_sine_waves", severity), 128.0)
    x0, y0 = rng.uniform(0.0, 1.0, size=2) * (width, height)
    freq = rng.uniform(0.0, 10.0)
    amplitude = rng.uniform(0.0, side(image) / 10)
    ring_width = max(rng.uniform(0.0, side(image) / 10), 1e-6)
    ys, xs = pixel_grid(height, width)
    angle = np.arctan2(xs - x0, ys - y0) * freq
    radius = np.hypot(xs - x0, ys - y0) + np.sin(angle) * amplitude
    saw = np.mod(radius, ring_width) / ring_width - 0.5
    return to_uint8(image + intensity * saw[..., None])


def plasma_pattern(height: int, width: int, time: float, iterations: int, sharpness: float,
                   scale: float) -> np.ndarray:
    """The release's iterated-trigonometry plasma, ``H x W x 3`` in -1..1 (red, green, blue)."""
    ys, xs = pixel_grid(height, width)
    x, y = xs / scale, ys / scale
    freq, damping, gain = 1.0, 1.0, 1.0  # the release's fourth factor starts at 0 and stays 0
    for _ in range(iterations):
        r0 = np.cos(y * freq + time / damping) / gain
        r1 = np.sin(x * freq + time / damping) / gain
        r0, r1 = r0 - 0.3 * r1, r1 + 0.3 * r0
        x, y = x + r0, y + r1
        freq, damping, gain = freq * 1.93, damping * 1.15, gain * (2.25 - sharpness)
    red, blue = np.sin(x - time), np.sin(y + time)
    green = np.sin((x + y + np.sin(time)) * 0.5)
    return np.stack([red, green, blue], axis=-1)


@register_corruption("plasma_noise", family=FAMILY)
def plasma_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blend a coloured plasma of amplitude ``6.4 p`` in, dimming the image by ``6.4 p / 255``."""
    intensity = scaled(parameter("plasma_noise", severity), 64.0)
    time = rng.uniform(0.0, 6 * np.pi)
    iterations = int(rng.integers(4, 7))
    sharpness = rng.uniform(0.5, 1.0)
    scale = rng.uniform(0.075, 0.2) * side(image)
    noise = plasma_pattern(*image.shape[:2], time, iterations, sharpness, scale)
    return to_uint8((1 - intensity / 255) * image + intensity * noise)


# -- Perlin turbulence -----------------------------------------------------------------------------------------------
def perlin_tables(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of every lattice corner ``(i, j)`` mod 256 (two ``256 x 256`` tables, x and y components).

    As released: 256 gradients drawn from the 1/256 grid of ``[-1, 1)^2`` and normalised, and corner ``(i, j)``
    takes gradient ``perm[perm[i] + j]`` of a random permutation ``perm`` of 0..255 (doubled).
    """
    perm = rng.permutation(_PERLIN_SIZE)
    grads = rng.integers(-_PERLIN_SIZE, _PERLIN_SIZE, size=(_PERLIN_SIZE, 2)) / _PERLIN_SIZE
    norms = np.linalg.norm(grads, axis=1, keepdims=True)
    grads = np.where(norms > 0, grads / np.where(norms > 0, norms, 1.0), np.array([1.0, 0.0]))
    doubled = np.concatenate([perm, perm])
    corner = doubled[perm[:, None] + np.arange(_PERLIN_SIZE)[None, :]]
    return grads[corner, 0], grads[corner, 1]


def perlin(x: np.ndarray, y: np.ndarray, tables: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Classic 2-D gradient noise (Perlin 1985, s-curve interpolation), scaled by 1.5 as released.

    ``x`` and ``y`` broadcast against each other (a column and a row keep the per-axis work one-dimensional).
    """
    tx, ty = x + _PERLIN_OFFSET, y + _PERLIN_OFFSET
    bx0 = np.floor(tx).astype(np.int64) % _PERLIN_SIZE
    by0 = np.floor(ty).astype(np.int64) % _PERLIN_SIZE
    bx1, by1 = (bx0 + 1) % _PERLIN_SIZE, (by0 + 1) % _PERLIN_SIZE
    rx0, ry0 = tx - np.floor(tx), ty - np.floor(ty)
    rx1, ry1 = rx0 - 1.0, ry0 - 1.0
    grad_x, grad_y = (t.ravel() for t in tables)

    def dot(bx: np.ndarray, by: np.ndarray, rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
        flat = bx * _PERLIN_SIZE + by
        return rx * grad_x.take(flat) + ry * grad_y.take(flat)

    sx, sy = rx0 * rx0 * (3.0 - 2.0 * rx0), ry0 * ry0 * (3.0 - 2.0 * ry0)
    u, v = dot(bx0, by0, rx0, ry0), dot(bx1, by0, rx1, ry0)
    a = u + sx * (v - u)
    u, v = dot(bx0, by1, rx0, ry1), dot(bx1, by1, rx1, ry1)
    b = u + sx * (v - u)
    return 1.5 * (a + sy * (b - a))


def turbulence(x: np.ndarray, y: np.ndarray, tables: tuple[np.ndarray, np.ndarray],
               octaves: float = _PERLIN_OCTAVES) -> np.ndarray:
    """Sum of ``|noise(f x, f y)| / f`` over ``f = 1, 2, 4, ... <= octaves``."""
    total = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)))
    freq = 1.0
    while freq <= octaves:
        total += np.abs(perlin(freq * x, freq * y, tables)) / freq
        freq *= 2.0
    return total


@register_corruption("perlin_noise", family=FAMILY)
def perlin_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blend grey Perlin turbulence (lattice ``32 * side / 224`` pixels) in with weight ``0.05 p``."""
    alpha = scaled(parameter("perlin_noise", severity), 0.5)
    tables = perlin_tables(rng)
    height, width = image.shape[:2]
    cell = 32 * side(image) / 224
    rows, cols = np.arange(height, dtype=np.float64)[:, None], np.arange(width, dtype=np.float64)[None, :]
    value = np.clip(0.5 * turbulence(rows / cell, cols / cell, tables) + 0.5, 0.0, 1.0)
    return to_uint8((1 - alpha) * image.astype(np.float64) + _WHITE * alpha * value[..., None])


# -- sparkles ---------------------------------------------------------------------------------------------------------
def starburst(shape: tuple[int, int], center: np.ndarray, ray_lengths: np.ndarray, exponent: float) -> np.ndarray:
    """The release's sparkle weight in 0..1: rays of the given lengths around ``center`` (row, column)."""
    ys, xs = pixel_grid(*shape)
    dy, dx = ys - center[0], xs - center[1]
    rays = len(ray_lengths)
    position = (np.arctan2(dx, dy) + np.pi) / (2 * np.pi) * rays
    index = np.floor(position).astype(np.int64)
    frac = position - index
    start, end = ray_lengths[index % rays], ray_lengths[(index + 1) % rays]
    length = start + frac * (end - start)
    falloff = (length**2 / (dy**2 + dx**2 + 1e-4)) ** exponent
    return np.clip((1.0 - (frac - 0.5) ** 2) * falloff, 0.0, 1.0)


@register_corruption("sparkles", family=FAMILY)
def sparkles(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Five white starbursts of radius ``0.01 p * side`` (50..199 rays, lengths +-25 %) at random places."""
    height, width = image.shape[:2]
    radius = scaled(parameter("sparkles", severity), 0.1) * side(image)
    centers = rng.uniform(0.0, 1.0, size=(5, 2)) * (height, width)
    nrays = rng.integers(50, 200, size=5)
    out = image.astype(np.float64)
    for center, rays in zip(centers, nrays, strict=True):
        lengths = np.maximum(1.0, radius * (1.0 + 0.25 * rng.standard_normal(int(rays))))
        weight = starburst((height, width), center, lengths, exponent=1.0)[..., None]
        out = out + weight * (_WHITE - out)
    return to_uint8(out)


@register_corruption("inverse_sparkles", family=FAMILY)
def inverse_sparkles(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """White everywhere but a starburst window of radius ``side / 4``; the window's edge hardens with ``p``."""
    height, width = image.shape[:2]
    amount = 100.0 - scaled(parameter("inverse_sparkles", severity), 65.0)
    center = rng.uniform(0.25, 0.75, size=2) * (height, width)
    rays = int(rng.integers(50, 200))
    radius = 0.25 * side(image)
    lengths = radius * (1.0 + 0.25 * rng.standard_normal(rays))
    weight = starburst((height, width), center, lengths, exponent=(100.0 - amount) / 50.0)[..., None]
    return to_uint8(_WHITE + weight * (image.astype(np.float64) - _WHITE))


# -- checkerboard_cutout ----------------------------------------------------------------------------------------------
@register_corruption("checkerboard_cutout", family=FAMILY)
def checkerboard_cutout(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Grey out a random ``0.1 p`` fraction of the 'black' squares of a rotated checkerboard."""
    height, width = image.shape[:2]
    fraction = scaled(parameter("checkerboard_cutout", severity), 1.0)
    angle = rng.uniform(0.0, 2 * np.pi)
    scale = max(rng.uniform(0.1, 0.25) * side(image), 1.0)
    cells = int(4 * max(height, width) // scale)
    chosen = rng.random((cells, cells)) < fraction
    ys, xs = pixel_grid(height, width)
    u = (np.cos(angle) * ys + np.sin(angle) * xs) / scale
    v = (-np.sin(angle) * ys + np.cos(angle) * xs) / scale
    same_parity = np.floor(u) % 2 == np.floor(v) % 2
    # the release indexes its grid with int() (truncation) and Python's wrap-around for negative indices
    picked = chosen[np.trunc(u).astype(np.int64) % cells, np.trunc(v).astype(np.int64) % cells]
    return np.where((same_parity & picked)[..., None], np.uint8(_GREY), image).astype(np.uint8)


# -- caustic_refraction -----------------------------------------------------------------------------------------------
def caustic_pattern(height: int, width: int, time: float, size: float) -> np.ndarray:
    """The release's caustic light pattern (tile of ``size`` pixels), ``H x W`` in 0..1.

    Five steps of ``i <- p + (cos(t - i_0) + sin(t + i_1), sin(t - i_1) + cos(t + i_0))``, each adding
    ``1 / |(p_0 k / sin(i_0 + t), p_1 k / cos(i_1 + t))|`` to the light; the sines and cosines of ``t +- i`` come
    from those of ``i`` by the angle-addition formulas (four transcendental calls a step instead of six).
    """
    p0 = np.mod(np.arange(height, dtype=np.float64)[:, None] / size, 1.0) * 2 * np.pi - 250
    p1 = np.mod(np.arange(width, dtype=np.float64)[None, :] / size, 1.0) * 2 * np.pi - 250
    sin0, cos0, sin1, cos1 = np.sin(p0), np.cos(p0), np.sin(p1), np.cos(p1)
    light = np.ones((height, width))
    with np.errstate(divide="ignore"):
        for n in range(5):
            t = time * (1.0 - 3.5 / (n + 1))
            st, ct = np.sin(t), np.cos(t)
            i0 = p0 + (ct * cos0 + st * sin0) + (st * cos1 + ct * sin1)
            i1 = p1 + (st * cos1 - ct * sin1) + (ct * cos0 - st * sin0)
            sin0, cos0, sin1, cos1 = np.sin(i0), np.cos(i0), np.sin(i1), np.cos(i1)
            length = np.hypot(p0 * _CAUSTIC_INTENSITY / (sin0 * ct + cos0 * st),
                              p1 * _CAUSTIC_INTENSITY / (cos1 * ct - sin1 * st))
            light += 1.0 / length
    c = 1.17 - (light / 5.0) ** 1.4
    return np.clip(np.abs(c) ** 8.0, 0.0, 1.0)


def neighbour(values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``values[y + dy, x + dx]`` for every pixel, 0 outside the image."""
    out = np.zeros_like(values)
    h, w = values.shape[:2]
    out[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        values[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


def refraction_offset(grad_y: np.ndarray, grad_x: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """In-plane part of a vertical ray refracted through the normal ``(grad_y, grad_x, 1)`` with index ``eta``.

    Closed form of the release's rotation: ``(n_y, n_x) * (sqrt(1 - r^2 / eta^2) - n_z / eta)`` with ``r`` the
    in-plane length of the unit normal; no deflection where the normal is within 1e-3 of vertical.
    """
    norm = np.sqrt(grad_y**2 + grad_x**2 + 1.0)
    ny, nx, nz = grad_y / norm, grad_x / norm, 1.0 / norm
    r2 = ny**2 + nx**2
    factor = np.sqrt(1.0 - r2 / eta**2) - nz / eta
    factor = np.where(nz >= 1.0 - 1e-3, 0.0, factor)
    return ny * factor, nx * factor


def bilinear(image: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """``image`` (``H x W x C``) sampled at (``py``, ``px``) bilinearly, neighbours outside the image counting 0."""
    h, w = image.shape[:2]
    flat = image.reshape(h * w, -1)
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    fy, fx = py - y0, px - x0
    out = np.zeros((*py.shape, flat.shape[1]), dtype=np.float64)
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        index = np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)
        out += (weight * inside)[..., None] * flat[index]
    return out


@register_corruption("caustic_refraction", family=FAMILY)
def caustic_refraction(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Look through a caustic-shaped lens: refraction displaced by up to ``0.05 p * side``, lit by ``0.2 p``."""
    height, width = image.shape[:2]
    value = parameter("caustic_refraction", severity)
    lens_scale, lighting = scaled(value, 0.5 * side(image)), scaled(value, 2.0)
    time = rng.uniform(0.5, 2.0)
    size = rng.uniform(0.75, 1.25) * side(image)
    from scipy.ndimage import gaussian_filter

    lens = gaussian_filter(caustic_pattern(height, width, time, size), sigma=1.0)
    up, down = neighbour(lens, -1, 0), neighbour(lens, 1, 0)
    left, right = neighbour(lens, 0, -1), neighbour(lens, 0, 1)
    # the release's "east - west" runs along rows and "south - north" along columns
    off_y, off_x = refraction_offset(down - up, right - left, _LENS_ETA)
    ys, xs = pixel_grid(height, width)
    sampled = bilinear(image.astype(np.float64) / 255.0, ys + np.round(off_y * lens_scale, 3),
                       xs + np.round(off_x * lens_scale, 3))
    lit = sampled + ((left - right) + (down - up))[..., None] * lighting
    return (np.clip(lit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _group() -> list[str]:
    """The ten corruptions, for ``--corruptions imagenet-c-bar`` (also ``c-bar`` and the family name)."""
    return list(CBAR_CORRUPTIONS)


CORRUPTION_GROUPS.update({"imagenet-c-bar": _group, "c-bar": _group, FAMILY: _group})
