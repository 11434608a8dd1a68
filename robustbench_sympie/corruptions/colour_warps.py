"""SyMPIE's colour-warp corruptions (Barbato et al., MMSys 2024), family ``"colour_warp"``.

Four global colour changes that SyMPIE is trained to undo, at severities 1..5, following the definitions
released with the paper (``classification/training/imagenetc.py``), reimplemented in vectorised numpy:

* ``darken``: every intensity divided by ``severity + 1``;
* ``sunset``: a blend, of weight ``severity / 5``, toward the image lit by a warm light
  ``(255, 192 + d, 192 - d)`` (``d`` uniform in -32..32) plus a tenth of that light as a haze;
* ``night``: a blend, of weight ``severity / 5``, toward 80 % of the image lit by a dark blue light
  ``(32, 32, 64 + b)`` (``b`` uniform in -24..24) and 20 % of the image with its bright pixels (mean > 128,
  mostly the sky) inverted;
* ``white_point``: per-channel gains ``(255 + severity * o / 5) / 255`` with offsets ``o`` uniform in -32..32.

Results are rounded to the nearest integer (half to even) and clipped to 0..255, as released.
"""

from __future__ import annotations

import numpy as np

from .base import CORRUPTION_GROUPS, register_corruption

FAMILY = "colour_warp"
#: the colour warps in the released order
COLOUR_WARPS: tuple[str, ...] = ("darken", "sunset", "night", "white_point")

_SUNSET_BASE = np.array([255.0, 192.0, 192.0])
_NIGHT_BASE = np.array([32.0, 32.0, 64.0])
_BRIGHT_THRESHOLD = 128.0


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and clip to the uint8 range."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _blend(image: np.ndarray, target: np.ndarray, severity: int) -> np.ndarray:
    """``image`` moved toward ``target`` by ``severity / 5``."""
    weight = severity / 5.0
    return weight * target + (1.0 - weight) * image


def _lit_by(image: np.ndarray, light: np.ndarray) -> np.ndarray:
    """The image under a coloured light: each channel scaled by ``light / 255``."""
    return image * (light / 255.0)


@register_corruption("darken", family=FAMILY)
def darken(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Divide every intensity by ``severity + 1`` (deterministic: ``rng`` is unused)."""
    return _to_uint8(image.astype(np.float32) / (severity + 1))


@register_corruption("sunset", family=FAMILY)
def sunset(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blend toward a warm cast: the image lit by an orange-pink light plus a haze of that light."""
    pixels = image.astype(np.float64)
    swing = float(rng.integers(-32, 33))
    light = _SUNSET_BASE + np.array([0.0, swing, -swing])
    warm = _lit_by(pixels, light) + light / 10.0
    return _to_uint8(_blend(pixels, warm, severity))


@register_corruption("night", family=FAMILY)
def night(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blend toward a dark blue cast mixed with the image whose bright regions (the sky) are inverted."""
    pixels = image.astype(np.float64)
    light = _NIGHT_BASE + np.array([0.0, 0.0, float(rng.integers(-24, 25))])
    bright = pixels.mean(axis=-1, keepdims=True) > _BRIGHT_THRESHOLD
    dark_sky = np.where(bright, 255.0 - pixels, pixels)
    target = 0.8 * _lit_by(pixels, light) + 0.2 * dark_sky
    return _to_uint8(_blend(pixels, target, severity))


@register_corruption("white_point", family=FAMILY)
def white_point(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains: the white point moves by a random offset in -32..32 scaled by ``severity / 5``."""
    offsets = rng.integers(-32, 33, size=3).astype(np.float64)
    white = 255.0 + severity * offsets / 5.0
    return _to_uint8(_lit_by(image.astype(np.float64), white))


def _training_pool() -> list[str]:
    """The corruptions SyMPIE is trained on: 15 benchmark + 4 extra ImageNet-C corruptions + 4 colour warps."""
    from .imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS

    return [*BENCHMARK_CORRUPTIONS, *EXTRA_CORRUPTIONS, *COLOUR_WARPS]


CORRUPTION_GROUPS.update(
    {
        "colour_warp": lambda: list(COLOUR_WARPS),
        "sympie_training": _training_pool,
    }
)
