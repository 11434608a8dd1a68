"""ImageNet-C-Bar (Mintun, Kirillov & Xie, NeurIPS 2021): reading pre-rendered copies, severities 1..5.

The published generator (facebookresearch/augmentation-corruption, ``imagenet_c_bar/``) writes
``ImageNet-C-Bar/<corruption>/<parameter>/<wnid>/<file>`` as JPEG quality 85, naming each severity folder by the
corruption's own parameter value with two decimals (table ``imagenet_c_bar.csv``, reproduced below); other
copies (SyMPIE's evaluation among them) renamed the folders ``1``..``5``. Both are read, the parent folder of
``ImageNet-C-Bar/`` too, and results always report severities 1..5.

Not implemented yet: generating the 10 corruptions natively from clean images (this dataset needs a rendered
copy as ``--data-root``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError
from .clean_folder import Preprocess
from .corruptions import SEVERITIES
from .datasets import CLEAN, register_dataset
from .imagenet_c_disk import RenderedDataset, open_rendered

NAME = "imagenet-c-bar"
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
CORRUPTIONS: tuple[str, ...] = tuple(PARAMETERS)
GROUPS: frozenset[str] = frozenset({"imagenet-c-bar", "c-bar", "all"})


def select(corruptions: str | Sequence[str]) -> list[str]:
    """Clean and the C-Bar corruptions among ``corruptions``; all ten when none is named (other names ignored)."""
    items = [s.strip() for s in corruptions.split(",")] if isinstance(corruptions, str) else list(corruptions)
    names = [CLEAN] if CLEAN in items else []
    if any(item in GROUPS for item in items):
        return names + list(CORRUPTIONS)
    chosen = [item for item in items if item in PARAMETERS]
    return names + (chosen or list(CORRUPTIONS))


@register_dataset(NAME)
def imagenet_c_bar(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,imagenet-c-bar",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
) -> RenderedDataset:
    """ImageNet-C-Bar read from a rendered copy (parameter-named or 1..5 severity folders)."""
    if data_root is None:
        raise DataError(f"{NAME} needs --data-root: a rendered ImageNet-C-Bar folder (native generation from clean "
                        "images is not implemented yet)")
    root = Path(data_root).expanduser()
    if (root / "ImageNet-C-Bar").is_dir():
        root = root / "ImageNet-C-Bar"
    return open_rendered(root, select(corruptions), list(severities), preprocess=preprocess, limit=limit,
                         name=NAME, parameters=PARAMETERS)
