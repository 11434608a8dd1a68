"""Clean ImageNet-style image folders: scanning, robust decoding and the standard geometry.

Two layouts are read, also mixed: flat files named ``<wnid>_<anything>.<ext>`` (as in the
``imagenet-sample-images`` set) and ``<wnid>/<file>`` subfolders (the ImageNet val layout).
Labels are the 1000-class index in sorted-wnid order.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError
from .labels import imagenet_classes

if TYPE_CHECKING:
    import torch

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_WNID = re.compile(r"^n\d{8}$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    """One clean image: its path, a stable id (path relative to the root) and its class index."""

    path: Path
    image_id: str
    label: int


def _wnid_of(relative: Path) -> str | None:
    if len(relative.parts) >= 2 and _WNID.match(relative.parts[-2]):
        return relative.parts[-2]
    prefix = relative.name.split("_", 1)[0]
    return prefix if _WNID.match(prefix) else None


#: label of an image whose name carries no ImageNet wnid (kept only with ``keep_unlabelled=True``)
UNLABELLED = -1
#: the error recorded for such an image (like an unreadable one, it is skipped and listed in skipped.log)
NO_WNID = ("carries no ImageNet wnid: expected '<wnid>_<name>.JPEG' (e.g. n01440764_tench.JPEG) or a "
           "'<wnid>/' folder")


def scan_image_folder(root: str | os.PathLike, *, keep_unlabelled: bool = False) -> list[ImageRecord]:
    """All images under ``root`` with their labels, sorted by id; clear errors for unusable layouts.

    Images whose names carry no ImageNet wnid are skipped (logged), like unreadable images; with
    ``keep_unlabelled`` they are kept with label :data:`UNLABELLED`, so that a dataset can report them as
    skipped samples. Only a folder without any labelled image is an error.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a directory")
    classes = imagenet_classes()
    records, unlabelled = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            if Path(filename).suffix.lower() not in IMAGE_EXTENSIONS or filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            relative = path.relative_to(root)
            wnid = _wnid_of(relative)
            if wnid is None or wnid not in classes.index_of:
                unlabelled.append(relative.as_posix())
                continue
            records.append(ImageRecord(path, relative.as_posix(), classes.index_of[wnid]))
    if unlabelled and records:
        shown = ", ".join(unlabelled[:5]) + (f" and {len(unlabelled) - 5} more" if len(unlabelled) > 5 else "")
        log.warning("%s: skipping %d image(s) whose names carry no ImageNet wnid: %s", root, len(unlabelled), shown)
        if keep_unlabelled:
            records += [ImageRecord(root / rel, rel, UNLABELLED) for rel in unlabelled]
    elif unlabelled:
        shown = ", ".join(unlabelled[:5]) + (f" and {len(unlabelled) - 5} more" if len(unlabelled) > 5 else "")
        raise DataError(
            f"{len(unlabelled)} image(s) under {root} carry no ImageNet wnid: {shown}. Expected files named "
            "'<wnid>_<name>.JPEG' (e.g. n01440764_tench.JPEG) or inside '<wnid>/' folders, with a wnid of "
            "the 1000 ImageNet-1k classes."
        )
    if not records:
        raise DataError(
            f"no images found under {root} (extensions {sorted(IMAGE_EXTENSIONS)}); expected an "
            "ImageNet-style folder: '<wnid>_<name>.JPEG' files or '<wnid>/' subfolders"
        )
    records.sort(key=lambda r: r.image_id)
    return records


def evenly_spaced(records: list[ImageRecord], limit: int | None) -> list[ImageRecord]:
    """A deterministic subset of ``limit`` records spread over the sorted list (all when ``limit`` is None)."""
    if limit is None or limit >= len(records):
        return list(records)
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    picks = np.linspace(0, len(records) - 1, num=limit).round().astype(int)
    return [records[i] for i in picks]


def load_rgb(path: str | os.PathLike | BinaryIO) -> Image.Image:
    """Decode an image file (a path or an open binary file) to RGB (grey-scale, palette, CMYK and alpha images
    included).

    Raises ``OSError`` for unreadable or truncated files.
    """
    try:
        with Image.open(path) as image, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, ValueError, SyntaxError) as exc:  # PIL's ways of saying "not an image"
        raise OSError(f"cannot decode {path}: {exc}") from exc


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize`` (bilinear, antialiased) and centre-crop ``crop`` x ``crop``.

    The default (256 -> 224) is ImageNet-C's own geometry, applied before corruption.
    """

    resize: int = 256
    crop: int = 224

    def __post_init__(self) -> None:
        if self.crop < 32 or self.resize < self.crop:
            raise ValueError(f"need resize >= crop >= 32 (corruptions need 32 px), got {self.resize}/{self.crop}")

    def __call__(self, image: Image.Image) -> np.ndarray:
        """PIL RGB image -> ``crop x crop x 3`` uint8 array."""
        import torchvision.transforms.functional as TF

        image = TF.center_crop(TF.resize(image, self.resize, antialias=True), [self.crop, self.crop])
        return np.array(image, dtype=np.uint8)  # a writable copy

    def on_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """The same geometry on uint8 ``... x 3 x H x W`` tensors of one size, on their device.

        torchvision's antialiased bilinear resize of tensors follows Pillow's; the pixels differ from
        :meth:`__call__`'s by rounding (at most a few grey levels, about 0.3 on average).
        """
        import torchvision.transforms.v2.functional as F

        images = F.resize(images, [self.resize], antialias=True)
        return F.center_crop(images, [self.crop, self.crop])


@dataclass(frozen=True)
class FitToCrop:
    """Centre-crop an image that is already at evaluation geometry (a rendered set's files) to ``crop``;
    an image smaller than ``crop`` is first resized to it (shorter side)."""

    crop: int = 224

    def __call__(self, image: Image.Image) -> np.ndarray:
        """PIL RGB image -> ``crop x crop x 3`` uint8 array."""
        import torchvision.transforms.functional as TF

        if min(image.size) < self.crop:
            return Preprocess(self.crop, self.crop)(image)
        return np.array(TF.center_crop(image, [self.crop, self.crop]), dtype=np.uint8)

    def on_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """The same geometry on uint8 ``... x 3 x H x W`` tensors of one size, on their device."""
        import torchvision.transforms.v2.functional as F

        if min(images.shape[-2:]) < self.crop:
            return Preprocess(self.crop, self.crop).on_tensor(images)
        return F.center_crop(images, [self.crop, self.crop])
