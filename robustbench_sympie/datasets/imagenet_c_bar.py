"""ImageNet-C-Bar (Mintun, Kirillov & Xie, NeurIPS 2021): pre-rendered copies or generated, severities 1..5.

The published generator (facebookresearch/augmentation-corruption, ``imagenet_c_bar/``) writes
``ImageNet-C-Bar/<corruption>/<parameter>/<wnid>/<file>`` as JPEG quality 85, naming each severity folder by the
corruption's own parameter value with two decimals (table ``imagenet_c_bar.csv``, :data:`PARAMETERS`); other
copies (SyMPIE's evaluation among them) renamed the folders ``1``..``5``. Both are read, the parent folder of
``ImageNet-C-Bar/`` too, and results always report severities 1..5.

Any other folder is read as clean ImageNet-style images, and the 10 corruptions are generated on the fly by our
reimplementation (:mod:`.imagenet_c_bar_corruptions`, which holds the parameter table), as ``imagenet-c`` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..corruptions import SEVERITIES
from ..corruptions.imagenet_c_bar import CBAR_CORRUPTIONS, PARAMETERS
from ..errors import DataError
from ..imageio import Preprocess
from .base import CLEAN
from .imagenet_c import ImageNetC, on_the_fly, require_reference
from .registry import register_dataset
from .render import MANIFEST
from .rendered import RenderedDataset, is_rendered_root, open_rendered

__all__ = ["CORRUPTIONS", "NAME", "PARAMETERS", "imagenet_c_bar", "is_cbar_rendered", "select"]

NAME = "imagenet-c-bar"
#: the folder the published generator writes under its output directory
RENDERED_FOLDER = "ImageNet-C-Bar"
#: the ten corruptions; their severity -> parameter table :data:`PARAMETERS` lives with the implementations
CORRUPTIONS: tuple[str, ...] = CBAR_CORRUPTIONS
GROUPS: frozenset[str] = frozenset({"imagenet-c-bar", "c-bar", "all"})


def select(corruptions: str | Sequence[str]) -> list[str]:
    """Clean and the C-Bar corruptions among ``corruptions``; all ten when none is named (other names ignored)."""
    items = [s.strip() for s in corruptions.split(",")] if isinstance(corruptions, str) else list(corruptions)
    names = [CLEAN] if CLEAN in items else []
    if any(item in GROUPS for item in items):
        return names + list(CORRUPTIONS)
    chosen = [item for item in items if item in PARAMETERS]
    return names + (chosen or list(CORRUPTIONS))


def is_cbar_rendered(root: Path) -> bool:
    """True when ``root`` holds a severity folder of any C-Bar corruption, or a ``build_dataset`` manifest."""
    return is_rendered_root(root, CORRUPTIONS, PARAMETERS) or (root / MANIFEST).is_file()


@register_dataset(NAME)
def imagenet_c_bar(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,imagenet-c-bar",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    corruption_backend: str = "reference",
) -> RenderedDataset | ImageNetC:
    """ImageNet-C-Bar read from a rendered copy (parameter-named or 1..5 folders), else generated from clean images.

    A root holding any C-Bar severity folder (or ``build_dataset``'s manifest) is read as rendered, so a partial
    copy reports its missing cells instead of having its corrupted images corrupted a second time. Otherwise the
    corruptions are applied to the root's clean images (resize, centre crop, then the per-sample seed).
    """
    if data_root is None:
        raise DataError(f"{NAME} needs --data-root: a rendered ImageNet-C-Bar folder, or clean ImageNet-style "
                        "images to generate it from")
    root = Path(data_root).expanduser()
    if (root / RENDERED_FOLDER).is_dir():
        root = root / RENDERED_FOLDER
    names = select(corruptions)
    if is_cbar_rendered(root):
        require_reference(corruption_backend, f"the rendered ImageNet-C-Bar set {root}")
        return open_rendered(root, names, list(severities), preprocess=preprocess, limit=limit,
                             name=NAME, parameters=PARAMETERS)
    return on_the_fly(root, names, severities, seed, preprocess, limit, corruption_backend, name=NAME)
