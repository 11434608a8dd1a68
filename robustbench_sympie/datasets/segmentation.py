"""Semantic-segmentation evaluation sets read from their official layouts: Cityscapes, ACDC, Dark Zurich.

Images are evaluated at native resolution (``--resize``/``--crop`` do not apply); each sample's target is the
int64 ``H x W`` map of Cityscapes train ids (0..18, 255 = ignored). Registered datasets:

* ``cityscapes``: ``leftImg8bit/val/<city>/*_leftImg8bit.png`` with ``gtFine/val/<city>/*_gtFine_labelIds.png``
  (label ids mapped to train ids); one cell, ``("clean", 0)``;
* ``cityscapes-c``: the same images corrupted on the fly (full resolution, one seed per image, cell and run seed,
  as ImageNet-C); cells ``(corruption, severity)`` and ``clean``;
* ``acdc``: ``rgb_anon/<condition>/val/<seq>/*_rgb_anon.png`` with ``gt/<condition>/val/<seq>/*_gt_labelTrainIds.png``;
  one cell per condition, ``("fog", 0)``, ``("night", 0)``, ``("rain", 0)``, ``("snow", 0)``;
* ``dark-zurich``: ``rgb_anon/val/night/<seq>/*_rgb_anon.png`` with ``gt/val/night/<seq>/*_gt_labelTrainIds.png``;
  one cell, ``("night", 0)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..corruptions import SEVERITIES, get_corruption, sample_seed
from ..corruptions.backends import DeviceCorruption, check_backend_has
from ..errors import DataError
from ..imageio import evenly_spaced, load_rgb
from ..metrics import IGNORE_INDEX
from .base import CLEAN, Cell, EvalDataset, GridDatasetMixin, Sample, expand_corruptions, grid_cells
from .cityscapes_labels import CITYSCAPES_CLASSES, LABEL_TO_TRAIN
from .registry import register_dataset

ACDC_CONDITIONS: tuple[str, ...] = ("fog", "night", "rain", "snow")
SEGMENTATION = "segmentation"


@dataclass(frozen=True)
class SegRecord:
    """One image and its label map; ``image_id`` is the image path relative to the data root."""

    image: Path
    label: Path
    image_id: str


@dataclass(frozen=True)
class Layout:
    """Where one split of an official layout keeps its images and labels, and how the names pair up."""

    images: str  # folder under the root: <images>/<seq>/<stem><image_suffix>
    labels: str  # folder under the root: <labels>/<seq>/<stem><label_suffix>
    image_suffix: str
    label_suffix: str
    what: str  # the dataset as error messages name it

    def records(self, root: Path) -> list[SegRecord]:
        """The paired records under ``root``; a missing folder or label file is a :class:`DataError` naming it."""
        image_dir, label_dir = root / self.images, root / self.labels
        for folder, kind, suffix in ((image_dir, "images", self.image_suffix),
                                     (label_dir, "labels", self.label_suffix)):
            if not folder.is_dir():
                raise DataError(f"{self.what} layout not found under {root}: missing {kind} folder {folder} "
                                f"(expected {folder}/<sequence>/*{suffix})")
        images = sorted(image_dir.glob(f"*/*{self.image_suffix}"))
        if not images:
            raise DataError(f"{self.what}: no images {image_dir}/<sequence>/*{self.image_suffix}")
        records, missing = [], []
        for image in images:
            stem = image.name[: -len(self.image_suffix)]
            label = label_dir / image.parent.name / f"{stem}{self.label_suffix}"
            (records if label.is_file() else missing).append(SegRecord(image, label, image.relative_to(root)
                                                                       .as_posix()))
        if missing:
            listing = ", ".join(str(r.label) for r in missing[:3])
            raise DataError(f"{self.what}: {len(missing)} of {len(images)} images have no label map; expected "
                            f"{listing}" + (", ..." if len(missing) > 3 else ""))
        return records


CITYSCAPES_VAL = Layout("leftImg8bit/val", "gtFine/val", "_leftImg8bit.png", "_gtFine_labelIds.png", "Cityscapes val")
DARK_ZURICH_VAL = Layout("rgb_anon/val/night", "gt/val/night", "_rgb_anon.png", "_gt_labelTrainIds.png",
                         "Dark Zurich val")


def acdc_layout(condition: str) -> Layout:
    """ACDC val of one condition."""
    return Layout(f"rgb_anon/{condition}/val", f"gt/{condition}/val", "_rgb_anon.png", "_gt_labelTrainIds.png",
                  f"ACDC val ({condition})")


def load_label_map(path: Path, lookup: np.ndarray | None = None) -> np.ndarray:
    """Read a single-channel label PNG as uint8, mapped through ``lookup`` (label ids -> train ids) if given."""
    try:
        with Image.open(path) as image:
            labels = np.asarray(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise OSError(f"cannot decode label map {path}: {exc}") from exc
    if labels.ndim != 2:
        raise OSError(f"label map {path} has shape {labels.shape}; expected a single-channel H x W image")
    if labels.dtype != np.uint8:
        labels = np.where((labels >= 0) & (labels < 256), labels, IGNORE_INDEX).astype(np.uint8)
    return lookup[labels] if lookup is not None else labels


class SegmentationCell(Dataset):
    """One cell: images (corrupted on the fly when the cell is a corruption) with their train-id label maps."""

    def __init__(self, records: Sequence[SegRecord], cell: Cell, *, seed: int = 0,
                 lookup: np.ndarray | None = None) -> None:
        self.records, self.cell, self.seed, self.lookup = list(records), cell, seed, lookup
        self.corruption = None if cell.severity == 0 else get_corruption(cell.corruption)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, position: int) -> Sample:
        record = self.records[position]
        try:
            pixels = np.array(load_rgb(record.image))  # writable
            labels = load_label_map(record.label, self.lookup)
            if labels.shape != pixels.shape[:2]:
                raise OSError(f"label map {record.label} is {labels.shape[1]}x{labels.shape[0]}, the image "
                              f"{pixels.shape[1]}x{pixels.shape[0]}")
            if self.corruption is not None:
                seed = sample_seed(record.image_id, self.cell.corruption, self.cell.severity, self.seed)
                pixels = self.corruption(pixels, self.cell.severity, seed)
        except OSError as exc:
            return Sample(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), record.image_id,
                          f"{record.image}: {exc}")
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).contiguous()
        return Sample(image, torch.from_numpy(labels.astype(np.int64)), record.image_id, "")


@dataclass
class SegmentationDataset(GridDatasetMixin):
    """A segmentation evaluation set: records per cell, evaluated at native resolution in train ids."""

    name: str
    cell_records: dict[Cell, list[SegRecord]]
    data_root: Path
    seed: int = 0
    lookup: np.ndarray | None = None
    corruption_backend: str = "reference"
    class_names: tuple[str, ...] = CITYSCAPES_CLASSES
    task: str = SEGMENTATION
    _cells: list[Cell] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cells = self._cells or list(self.cell_records)

    @property
    def records(self) -> list[SegRecord]:
        """The distinct records over the cells (their ids identify the image set)."""
        unique = {r.image_id: r for records in self.cell_records.values() for r in records}
        return list(unique.values())

    @property
    def n_images(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def cells(self) -> list[Cell]:
        return list(self._cells)

    def cell_dataset(self, cell: Cell) -> SegmentationCell:
        on_device = self.corruption_backend != "reference"
        return SegmentationCell(self.cell_records[cell], Cell(CLEAN, 0) if on_device else cell, seed=self.seed,
                                lookup=self.lookup)

    def device_corruption(self, cell: Cell) -> DeviceCorruption | None:
        if self.corruption_backend == "reference" or cell.severity == 0:
            return None
        return DeviceCorruption(cell.corruption, cell.severity, self.seed)

    def provenance(self) -> dict[str, Any]:
        return {"data_root": str(self.data_root), "n_images": self.n_images, "seed": self.seed,
                "resolution": "native", "corruption_backend": self.corruption_backend}


def _root(data_root: str | os.PathLike | None, what: str, layout: str) -> Path:
    if data_root is None:
        raise DataError(f"{what} needs --data-root DIR: the folder holding the official layout ({layout})")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"{what}: --data-root {root} is not a folder")
    return root


def _names(corruptions: str | Sequence[str]) -> list[str]:
    items = corruptions.split(",") if isinstance(corruptions, str) else list(corruptions)
    return [str(i).strip() for i in items if str(i).strip()]


@register_dataset("cityscapes")
def cityscapes(data_root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0,
               **_: Any) -> EvalDataset:
    """Cityscapes val (500 images, 2048 x 1024), clean; ``corruptions``/``severities``/``preprocess`` do not apply."""
    root = _root(data_root, "cityscapes", "leftImg8bit/val/<city>/, gtFine/val/<city>/")
    records = evenly_spaced(CITYSCAPES_VAL.records(root), limit)
    return SegmentationDataset("cityscapes", {Cell(CLEAN, 0): records}, root, seed, LABEL_TO_TRAIN)


@register_dataset("cityscapes-c")
def cityscapes_c(data_root: str | os.PathLike | None = None, corruptions: str | Sequence[str] = "clean,benchmark",
                 severities: Sequence[int] = SEVERITIES, seed: int = 0, limit: int | None = None,
                 corruption_backend: str = "reference", **_: Any) -> EvalDataset:
    """Cityscapes val corrupted on the fly at full resolution with the suite's corruptions (cells as ImageNet-C)."""
    root = _root(data_root, "cityscapes-c", "leftImg8bit/val/<city>/, gtFine/val/<city>/")
    names = expand_corruptions(corruptions)
    corruption_backend = check_backend_has(corruption_backend, names)
    records = evenly_spaced(CITYSCAPES_VAL.records(root), limit)
    cells = grid_cells(names, list(severities))
    return SegmentationDataset("cityscapes-c", dict.fromkeys(cells, records), root, seed, LABEL_TO_TRAIN,
                               corruption_backend)


@register_dataset("acdc")
def acdc(data_root: str | os.PathLike | None = None, corruptions: str | Sequence[str] = "all", seed: int = 0,
         limit: int | None = None, **_: Any) -> EvalDataset:
    """ACDC val, one cell per condition; ``--corruptions fog,night`` selects conditions (other names: all four)."""
    root = _root(data_root, "acdc", "rgb_anon/<condition>/val/<seq>/, gt/<condition>/val/<seq>/")
    chosen = [n for n in _names(corruptions) if n in ACDC_CONDITIONS] or list(ACDC_CONDITIONS)
    records = {Cell(c, 0): evenly_spaced(acdc_layout(c).records(root), limit) for c in chosen}
    return SegmentationDataset("acdc", records, root, seed)


@register_dataset("dark-zurich")
def dark_zurich(data_root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0,
                **_: Any) -> EvalDataset:
    """Dark Zurich val (night, 50 labelled images), one cell ``("night", 0)``."""
    root = _root(data_root, "dark-zurich", "rgb_anon/val/night/<seq>/, gt/val/night/<seq>/")
    records = evenly_spaced(DARK_ZURICH_VAL.records(root), limit)
    return SegmentationDataset("dark-zurich", {Cell("night", 0): records}, root, seed)
