"""Registry of evaluation datasets and the on-the-fly ImageNet-C dataset.

A dataset is a grid of *cells* (corruption, severity); each cell is a torch ``Dataset`` of
samples ``(image uint8 3xHxW, label, position, error)``. ``clean`` is the cell ``("clean", 0)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..registry import Registry
from .clean_folder import (
    NO_WNID,
    UNLABELLED,
    ImageRecord,
    Preprocess,
    evenly_spaced,
    load_rgb,
    scan_image_folder,
)
from .corruptions import CORRUPTION_GROUPS, CORRUPTIONS, SEVERITIES, get_corruption, sample_seed

CLEAN = "clean"

DATASETS: Registry = Registry("dataset", entry_point_group="robustbench_sympie.datasets",
                              builtin_modules=("robustbench_sympie.data.datasets", "robustbench_sympie.data.mixed",
                                               "robustbench_sympie.data.colour_warp_dataset",
                                               "robustbench_sympie.data.imagenet_c_bar",
                                               "robustbench_sympie.data.vizwiz"))


def register_dataset(name: str | None = None, *, overwrite: bool = False):
    """Decorator adding a dataset factory ``fn(data_root=..., corruptions=..., ...) -> EvalDataset``."""
    return DATASETS.register(name, overwrite=overwrite)


def create_dataset(name: str, **kwargs: Any):
    """Build the evaluation dataset registered as ``name``."""
    return DATASETS.create(name, **kwargs)


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return DATASETS.names()


def demo_data_root() -> Path:
    """The small set of real ImageNet validation-style images vendored in the package."""
    return Path(str(resources.files("robustbench_sympie.data").joinpath("demo")))


class Cell(NamedTuple):
    """One (corruption, severity) cell of an evaluation grid; clean is ``("clean", 0)``."""

    corruption: str
    severity: int


class Sample(NamedTuple):
    image: torch.Tensor  # uint8 3 x H x W (empty when the file could not be read)
    label: int
    position: int
    error: str  # '' when the image loaded


def expand_corruptions(spec: str | Iterable[str]) -> list[str]:
    """Turn ``"clean,noise,fog"`` (names and group names) into a list of known corruption names."""
    CORRUPTIONS.names()  # load the corruption families (and their group names)
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names: list[str] = []
    for item in filter(None, items):
        expanded = CORRUPTION_GROUPS[item]() if item in CORRUPTION_GROUPS else [item]
        for name in expanded:
            if name != CLEAN:
                get_corruption(name)  # did-you-mean error for unknown names
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError(f"no corruptions selected by {spec!r}")
    return names


def grid_cells(corruptions: Sequence[str], severities: Sequence[int]) -> list[Cell]:
    """The cells of ``corruptions x severities``; ``clean`` contributes one cell of severity 0."""
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be in {SEVERITIES}, got {bad}")
    cells = []
    for name in corruptions:
        cells.extend([Cell(CLEAN, 0)] if name == CLEAN else [Cell(name, s) for s in severities])
    return cells


class CorruptedImageFolder(Dataset):
    """One cell: clean images decoded, preprocessed, then corrupted with a per-sample seed."""

    def __init__(self, records: Sequence[ImageRecord], cell: Cell, *, seed: int, preprocess: Preprocess) -> None:
        self.records = list(records)
        self.cell = cell
        self.seed = seed
        self.preprocess = preprocess
        self.corruption = None if cell.corruption == CLEAN else get_corruption(cell.corruption)

    def __len__(self) -> int:
        return len(self.records)

    def pixels(self, position: int) -> np.ndarray:
        """The corrupted ``H x W x 3`` uint8 pixels of sample ``position`` (raises OSError if unreadable)."""
        record = self.records[position]
        image = self.preprocess(load_rgb(record.path))
        if self.corruption is None:
            return image
        seed = sample_seed(record.image_id, self.cell.corruption, self.cell.severity, self.seed)
        return self.corruption(image, self.cell.severity, seed)

    def __getitem__(self, position: int) -> Sample:
        record = self.records[position]
        if record.label == UNLABELLED:  # skipped like an unreadable image
            return Sample(torch.empty(0, dtype=torch.uint8), record.label, position, f"{record.path}: {NO_WNID}")
        try:
            pixels = self.pixels(position)
        except OSError as exc:
            return Sample(torch.empty(0, dtype=torch.uint8), record.label, position, f"{record.path}: {exc}")
        return Sample(torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), record.label, position, "")


class Batch(NamedTuple):
    images: torch.Tensor  # float B x 3 x H x W in [0, 1]
    labels: torch.Tensor  # int64 B
    errors: list[str]  # one message per sample that could not be loaded


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack the loaded samples (as floats in [0, 1]) and collect the failures."""
    good = [s for s in samples if not s.error]
    errors = [s.error for s in samples if s.error]
    if good:
        images = torch.stack([s.image for s in good]).float().div_(255.0)
    else:
        images = torch.empty(0, 3, 1, 1)
    return Batch(images, torch.tensor([s.label for s in good], dtype=torch.long), errors)


@dataclass
class ImageNetC:
    """ImageNet-C generated on the fly from a clean ImageNet-style folder (default: the demo images)."""

    records: list[ImageRecord]
    corruptions: list[str]
    severities: list[int]
    seed: int
    preprocess: Preprocess
    data_root: Path
    name: str = "imagenet-c"

    @property
    def n_images(self) -> int:
        return len(self.records)

    def cells(self) -> list[Cell]:
        return grid_cells(self.corruptions, self.severities)

    def cell_dataset(self, cell: Cell) -> CorruptedImageFolder:
        return CorruptedImageFolder(self.records, cell, seed=self.seed, preprocess=self.preprocess)

    def provenance(self) -> dict[str, Any]:
        """Settings that determine the pixels, recorded with every result row."""
        return {
            "data_root": str(self.data_root),
            "n_images": self.n_images,
            "seed": self.seed,
            "resize": self.preprocess.resize,
            "crop": self.preprocess.crop,
        }


@register_dataset("imagenet-c")
def imagenet_c(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,benchmark",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
) -> Any:
    """ImageNet-C (15 benchmark + 4 extra corruptions, severities 1..5, and clean).

    ``data_root`` is read as a pre-rendered set when it holds ``<corruption>/<severity>/`` folders
    (see :mod:`.imagenet_c_disk`), through ``datasets`` when it is ``hf://...`` or a folder of saved ``datasets``
    (see :mod:`.imagenet_c_hub`); otherwise the corruptions are generated on the fly from its clean images.
    """
    names = expand_corruptions(corruptions)
    if data_root is not None:
        from .imagenet_c_disk import looks_rendered, open_rendered
        from .imagenet_c_hub import is_hub_source, open_hub

        if is_hub_source(data_root, names):
            return open_hub(data_root, names, list(severities), preprocess=preprocess, limit=limit)
        if looks_rendered(data_root):
            return open_rendered(data_root, names, list(severities), preprocess=preprocess, limit=limit)
    root = Path(data_root).expanduser() if data_root is not None else demo_data_root()
    records = evenly_spaced(scan_image_folder(root, keep_unlabelled=True), limit)
    return ImageNetC(records, names, list(severities), seed, preprocess or Preprocess(), root)
