"""The ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) through ``imagecorruptions``.

The 15 benchmark corruptions in four families (noise, blur, weather, digital) and the 4 extra
("validation") ones, at severities 1..5, rendered by the ``imagecorruptions-imaug`` distribution.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .base import CORRUPTION_GROUPS, legacy_numpy_seed, register_corruption

BENCHMARK_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
#: the 15 corruptions averaged in mCE, in the published order
BENCHMARK_CORRUPTIONS: tuple[str, ...] = tuple(c for fam in BENCHMARK_FAMILIES.values() for c in fam)
#: the 4 held-out corruptions published with ImageNet-C
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")


@functools.cache
def _imagecorruptions():
    try:
        import imagecorruptions
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "ImageNet-C corruptions need the 'imagecorruptions' module: pip install imagecorruptions-imaug"
        ) from exc
    return imagecorruptions


def _make(name: str):
    def corrupt(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        module = _imagecorruptions()
        fn = module.corruption_dict[name]
        seed = int(rng.integers(2**63))
        # impulse_noise and glass_blur take an explicit seed (they ignore numpy's global state);
        # the others draw from the legacy global generator, which we seed and restore.
        kwargs = {"seed": seed % 2**32} if "seed" in inspect.signature(fn).parameters else {}
        with legacy_numpy_seed(seed):
            return module.corrupt(image, severity=severity, corruption_name=name, **kwargs)

    corrupt.__name__ = name
    corrupt.__doc__ = f"ImageNet-C {name!r} at the given severity (imagecorruptions)."
    return corrupt


for _family, _names in BENCHMARK_FAMILIES.items():
    for _name in _names:
        register_corruption(_name, family=_family)(_make(_name))
for _name in EXTRA_CORRUPTIONS:
    register_corruption(_name, family="extra")(_make(_name))

CORRUPTION_GROUPS.update(
    {
        "benchmark": lambda: list(BENCHMARK_CORRUPTIONS),
        "imagenet-c": lambda: list(BENCHMARK_CORRUPTIONS),
        "extra": lambda: list(EXTRA_CORRUPTIONS),
        "all-imagenet-c": lambda: list(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS),
        **{fam: (lambda names=names: list(names)) for fam, names in BENCHMARK_FAMILIES.items()},
    }
)
