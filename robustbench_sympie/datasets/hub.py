"""ImageNet-C copies in the Hugging Face ``datasets`` format: on the hub, or saved to a local folder.

Hub copies are typically one dataset per corruption with the fields ``image``, ``class_id`` (a wnid; an integer
``label`` is accepted too), ``filename`` and, when several severities share a dataset, ``severity``. Two sources:

* ``hf://OWNER/NAME-{corruption}`` (``{severity}`` may appear too; ``@SPLIT`` at the end picks the split,
  default ``validation``), loaded with ``datasets.load_dataset``. Without network access (or with
  ``HF_DATASETS_OFFLINE=1`` and nothing cached) the error says so and names the repository.
* a local folder holding ``<corruption>/`` or ``<corruption>/<severity>/`` datasets written by
  ``Dataset.save_to_disk`` (a ``state.json`` marks each), read with ``datasets.load_from_disk``.

Images are decoded here (not by ``datasets``), so an unreadable one becomes a skipped sample, as on disk.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..imageio import FitToCrop, Preprocess
from ..labels import imagenet_classes
from .base import CLEAN, Cell, GridDatasetMixin, ImageCellDataset

HF_PREFIX = "hf://"
DEFAULT_SPLIT = "validation"


def _saved(folder: Path) -> bool:
    return (folder / "state.json").is_file()


def is_hub_source(data_root: str | os.PathLike, corruptions: Sequence[str]) -> bool:
    """``hf://...``, or a folder with a ``save_to_disk`` dataset for one of ``corruptions``."""
    if str(data_root).startswith(HF_PREFIX):
        return True
    root = Path(data_root).expanduser()
    return any(_saved(root / c) or any(_saved(p) for p in (root / c).glob("[1-5]"))
               for c in corruptions if c != CLEAN and (root / c).is_dir())


def _load_hub(template: str, corruption: str, severity: int | None):
    """``datasets.load_dataset`` on the repository the template names; a clear error when it cannot."""
    import datasets

    repo, _, split = template.removeprefix(HF_PREFIX).partition("@")
    repo = repo.format(corruption=corruption, severity=severity if severity is not None else "")
    try:
        return datasets.load_dataset(repo, split=split or DEFAULT_SPLIT)
    except Exception as exc:  # network, offline mode, missing repository or split: all end here
        raise DataError(f"cannot load {repo!r} (split {split or DEFAULT_SPLIT!r}) from the Hugging Face hub: "
                        f"{type(exc).__name__}: {exc}. Offline? Download it once with network access or pass a "
                        "local folder.") from exc


def _label_of(row: dict[str, Any], where: str) -> int:
    if "class_id" in row:
        index = imagenet_classes().index_of.get(str(row["class_id"]))
        if index is None:
            raise DataError(f"{where}: class_id {row['class_id']!r} is not an ImageNet-1k wnid")
        return index
    if "label" in row:
        return int(row["label"])
    raise DataError(f"{where}: rows need a 'class_id' (wnid) or 'label' field, found {sorted(row)}")


class HubCell(ImageCellDataset):
    """One cell: the rows of an HF dataset (records are row indices), decoded and centre-cropped."""

    def __init__(self, table, indices: Sequence[int], crop: int, where: str) -> None:
        super().__init__(indices)
        self.table = table
        self.crop = crop
        self.source = where

    @functools.lru_cache(maxsize=1)  # noqa: B019 - one row: target, id and pixels of a sample read it once
    def _row(self, record: int) -> dict[str, Any]:
        return self.table[record]

    def target(self, record: int) -> int:
        return _label_of(self._row(record), self.source)

    def image_id(self, record: int) -> str:
        return str(self._row(record).get("filename") or f"row {record}")

    def where(self, record: int) -> str:
        return f"{self.source} {self.image_id(record)}"

    def pixels(self, record: int) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(self._row(record)["image"]["bytes"])) as image:
                return FitToCrop(self.crop)(image.convert("RGB"))
        except (UnidentifiedImageError, ValueError) as exc:
            raise OSError(str(exc)) from exc


@dataclass
class HubImageNetC(GridDatasetMixin):
    """ImageNet-C read through ``datasets`` (see the module docstring)."""

    source: str
    corruptions: list[str]
    severities: list[int]
    crop: int
    limit: int | None
    name: str = "imagenet-c"
    missing: list[Cell] = field(default_factory=list)
    _cells: dict[Cell, HubCell] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for corruption in (c for c in self.corruptions if c != CLEAN):
            for severity in self.severities:
                cell = Cell(corruption, severity)
                found = self._open(cell)
                if found is None:
                    self.missing.append(cell)
                else:
                    self._cells[cell] = found
        if CLEAN in self.corruptions:
            self.missing.insert(0, Cell(CLEAN, 0))
        if not self._cells:
            raise DataError(f"{self.source}: none of the requested cells was found")

    def _open(self, cell: Cell) -> HubCell | None:
        import datasets

        where = f"{self.source} {cell.corruption}/{cell.severity}"
        if self.source.startswith(HF_PREFIX):
            per_severity = "{severity}" in self.source
            table = _load_hub(self.source, cell.corruption, cell.severity if per_severity else None)
        else:
            root = Path(self.source) / cell.corruption
            per_severity = _saved(root / str(cell.severity))
            if not per_severity and not _saved(root):
                return None
            table = datasets.load_from_disk(str(root / str(cell.severity) if per_severity else root))
        if "image" not in table.column_names:
            raise DataError(f"{where}: no 'image' field (fields: {table.column_names})")
        table = table.cast_column("image", datasets.Image(decode=False))
        if per_severity or "severity" not in table.column_names:
            indices = list(range(len(table)))
        else:
            indices = [i for i, s in enumerate(table["severity"]) if int(s) == cell.severity]
        if not indices:
            return None
        if self.limit is not None and self.limit < len(indices):
            step = (len(indices) - 1) / max(self.limit - 1, 1)
            indices = [indices[round(i * step)] for i in range(self.limit)]
        return HubCell(table, indices, self.crop, where)

    @property
    def n_images(self) -> int:
        return len(next(iter(self._cells.values())))

    def cells(self) -> list[Cell]:
        return list(self._cells)

    def cell_dataset(self, cell: Cell) -> HubCell:
        return self._cells[cell]

    def provenance(self) -> dict[str, Any]:
        return {"data_root": self.source, "layout": "datasets", "n_images": self.n_images, "crop": self.crop,
                "missing_cells": ",".join(f"{c.corruption}/{c.severity}" for c in self.missing)}


def open_hub(data_root: str | os.PathLike, corruptions: Sequence[str], severities: Sequence[int], *,
             preprocess: Preprocess | None = None, limit: int | None = None) -> HubImageNetC:
    """ImageNet-C from ``hf://...`` or a folder of saved ``datasets`` (see the module docstring)."""
    return HubImageNetC(str(data_root), list(corruptions), list(severities), (preprocess or Preprocess()).crop,
                        limit)
