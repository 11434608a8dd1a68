"""Pre-rendered corruption sets on disk: ``ROOT/<corruption>/<severity>/<wnid>/<file>``.

This is the layout of the published ImageNet-C (Hendrycks & Dietterich), optionally with the family folder
the release tarballs unpack to (``ROOT/noise/gaussian_noise/3/...``), of ImageNet-C-Bar (severity folders
named by parameter value, see :mod:`.imagenet_c_bar`) and of everything ``build_dataset`` writes. A
``ROOT/clean/`` folder, when present, is the clean cell. Requested cells whose folder is absent are reported
(logged and recorded in the provenance), never a crash; unreadable files are skipped and logged by the runner.

Rendered images are already at evaluation geometry (224 x 224): they are only centre-cropped to ``crop``
(as the published evaluation does), and resized first only when smaller than ``crop``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..imageio import FitToCrop, ImageRecord, Preprocess, evenly_spaced, load_rgb, scan_image_folder
from .base import CLEAN, Cell, GridDatasetMixin, ImageCellDataset

log = logging.getLogger(__name__)

#: folders that may sit between the root and the corruption folders (the published tarballs)
FAMILY_FOLDERS: tuple[str, ...] = ("noise", "blur", "weather", "digital", "extra")
SEVERITY_FOLDERS: tuple[str, ...] = ("1", "2", "3", "4", "5")


def _parameter_name(value: float) -> str:
    """A severity parameter as the C-Bar generator names its folders: two decimals."""
    return f"{value:.2f}"


def severity_folders(corruption_dir: Path, parameters: Sequence[float] | None = None) -> dict[int, Path]:
    """Severity 1..5 -> its folder, named ``1``..``5`` or (with ``parameters``) by the parameter value."""
    found = {int(name): corruption_dir / name for name in SEVERITY_FOLDERS if (corruption_dir / name).is_dir()}
    if parameters is not None:
        for severity, value in enumerate(parameters, start=1):
            folder = corruption_dir / _parameter_name(value)
            if severity not in found and folder.is_dir():
                found[severity] = folder
    return dict(sorted(found.items()))


def corruption_folder(root: Path, corruption: str) -> Path | None:
    """``ROOT/<corruption>`` or ``ROOT/<family>/<corruption>``, whichever exists."""
    for candidate in (root / corruption, *(root / family / corruption for family in FAMILY_FOLDERS)):
        if candidate.is_dir():
            return candidate
    return None


def is_rendered_root(root: str | os.PathLike, corruptions: Sequence[str],
                     parameters: Mapping[str, Sequence[float]] | None = None) -> bool:
    """True when ``root`` holds at least one ``<corruption>/<severity>/`` folder of ``corruptions``."""
    root = Path(root).expanduser()
    for name in corruptions:
        folder = corruption_folder(root, name) if name != CLEAN else None
        if folder is not None and severity_folders(folder, (parameters or {}).get(name)):
            return True
    return False


def looks_rendered(root: str | os.PathLike) -> bool:
    """True when ``root`` holds any rendered corruption folder (of any registered corruption) or a manifest.

    Decided from the root alone, never from the corruptions requested, so that a rendered set is never scanned
    as clean images (its ``<corruption>/<severity>/<wnid>/`` files would otherwise all look labelled).
    """
    from ..corruptions import CORRUPTIONS

    root = Path(root).expanduser()
    return (root / "manifest.json").is_file() or is_rendered_root(root, CORRUPTIONS.names())


class ImageFileCell(ImageCellDataset):
    """One cell of a rendered set: the files of one ``<corruption>/<severity>`` folder, decoded as stored."""

    def __init__(self, records: Sequence[ImageRecord], crop: int) -> None:
        super().__init__(records)
        self.geometry = FitToCrop(crop)

    def pixels(self, record: ImageRecord) -> np.ndarray:
        return self.geometry(load_rgb(record.path))

    def source_file(self, record: ImageRecord) -> Path:
        return record.path  # stored pixels: the file and the crop are all there is


@dataclass
class RenderedDataset(GridDatasetMixin):
    """A pre-rendered grid of cells read from disk (see the module docstring for the layout)."""

    root: Path
    folders: dict[Cell, Path]
    missing: list[Cell]
    crop: int
    limit: int | None
    name: str = "imagenet-c"
    _records: dict[Cell, list[ImageRecord]] = field(default_factory=dict, repr=False)

    def _scanned(self) -> dict[Cell, list[ImageRecord]]:
        """Every cell's images; with ``limit``, one subset chosen over the union of the cells' image ids.

        Choosing the subset once keeps the same images in every cell, also where cells partition the images
        (ImageNet-C-Mixed's ``mixed_<k>`` folders), so ``--limit`` never re-weights the cells.
        """
        if not self._records:
            scanned = {cell: scan_image_folder(folder) for cell, folder in self.folders.items()}
            if self.limit is not None:
                union = {r.image_id: r for records in scanned.values() for r in records}
                chosen = {r.image_id for r in evenly_spaced(sorted(union.values(), key=lambda r: r.image_id),
                                                            self.limit)}
                scanned = {cell: [r for r in records if r.image_id in chosen] for cell, records in scanned.items()}
            self._records.update(scanned)
        return self._records

    def records(self, cell: Cell) -> list[ImageRecord]:
        """The (limited) images of ``cell``, scanned once."""
        return self._scanned()[cell]

    @property
    def n_images(self) -> int:
        """Distinct images over the cells (after ``limit``)."""
        return len({r.image_id for records in self._scanned().values() for r in records})

    def cells(self) -> list[Cell]:
        return list(self.folders)

    def cell_dataset(self, cell: Cell) -> ImageFileCell:
        if cell not in self.folders:
            raise DataError(f"{self.root}: no folder for {cell.corruption}/{cell.severity}")
        return ImageFileCell(self.records(cell), self.crop)

    def provenance(self) -> dict[str, Any]:
        """Settings that determine the pixels: the folder, the image count and the cells that were absent."""
        return {
            "data_root": str(self.root),
            "layout": "pre-rendered",
            "n_images": self.n_images,
            "crop": self.crop,
            "missing_cells": ",".join(f"{c.corruption}/{c.severity}" for c in self.missing),
        }


def open_rendered(
    root: str | os.PathLike,
    corruptions: Sequence[str],
    severities: Sequence[int],
    *,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    name: str = "imagenet-c",
    parameters: Mapping[str, Sequence[float]] | None = None,
) -> RenderedDataset:
    """The requested cells found under ``root``; absent ones are logged and listed in ``missing``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a directory")
    folders: dict[Cell, Path] = {}
    missing: list[Cell] = []
    for corruption in corruptions:
        if corruption == CLEAN:
            found = {0: root / CLEAN} if (root / CLEAN).is_dir() else {}
            wanted = [Cell(CLEAN, 0)]
        else:
            base = corruption_folder(root, corruption)
            found = severity_folders(base, (parameters or {}).get(corruption)) if base is not None else {}
            wanted = [Cell(corruption, s) for s in severities]
        for cell in wanted:
            if cell.severity in found:
                folders[cell] = found[cell.severity]
            else:
                missing.append(cell)
    if not folders:
        raise DataError(f"{root} holds none of the requested <corruption>/<severity> folders "
                        f"({', '.join(corruptions)} x {list(severities)})")
    if missing:
        shown = ", ".join(f"{c.corruption}/{c.severity}" for c in missing)
        log.warning("%s: %d requested cell(s) have no folder and are skipped: %s", root, len(missing), shown)
    crop = (preprocess or Preprocess()).crop
    return RenderedDataset(root, folders, missing, crop, limit, name)
