"""ImageNet-C generated on the fly from a clean ImageNet-style folder (and the dispatch to rendered or hub sets)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..corruptions import SEVERITIES, get_corruption, sample_seed
from ..corruptions.backends import AutoBackend, DeviceCorruption, check_backend_has
from ..errors import SuiteError
from ..imageio import ImageRecord, Preprocess, evenly_spaced, load_rgb, scan_image_folder
from .base import (
    CLEAN,
    Cell,
    EvalDataset,
    GridDatasetMixin,
    ImageCellDataset,
    demo_data_root,
    expand_corruptions,
    grid_cells,
)
from .registry import register_dataset


class CorruptedImageFolder(ImageCellDataset):
    """One cell: clean images decoded, preprocessed, then corrupted with a per-sample seed."""

    def __init__(self, records: Sequence[ImageRecord], cell: Cell, *, seed: int, preprocess: Preprocess) -> None:
        super().__init__(records)
        self.cell = cell
        self.seed = seed
        self.preprocess = self.geometry = preprocess
        self.corruption = None if cell.corruption == CLEAN else get_corruption(cell.corruption)

    def source_file(self, record: ImageRecord) -> Path | None:
        return record.path if self.corruption is None else None  # corrupted here: decoded here

    def pixels(self, record: ImageRecord) -> np.ndarray:
        """The corrupted ``H x W x 3`` uint8 pixels of ``record`` (raises OSError if unreadable)."""
        image = self.preprocess(load_rgb(record.path))
        if self.corruption is None:
            return image
        seed = sample_seed(record.image_id, self.cell.corruption, self.cell.severity, self.seed)
        return self.corruption(image, self.cell.severity, seed)


@dataclass
class ImageNetC(GridDatasetMixin):
    """ImageNet-C generated on the fly from a clean ImageNet-style folder (default: the demo images)."""

    records: list[ImageRecord]
    corruptions: list[str]
    severities: list[int]
    seed: int
    preprocess: Preprocess
    data_root: Path
    name: str = "imagenet-c"
    #: ``reference``: corrupted in the workers by the published code; ``torch``: workers decode clean images and
    #: the runner corrupts the batches on the device (:meth:`device_corruption`)
    corruption_backend: str = "reference"

    @property
    def n_images(self) -> int:
        return len(self.records)

    def cells(self) -> list[Cell]:
        return grid_cells(self.corruptions, self.severities)

    def cell_dataset(self, cell: Cell) -> CorruptedImageFolder:
        on_device = self.corruption_backend != "reference"
        return CorruptedImageFolder(self.records, Cell(CLEAN, 0) if on_device else cell, seed=self.seed,
                                    preprocess=self.preprocess)

    def device_corruption(self, cell: Cell) -> DeviceCorruption | None:
        if self.corruption_backend == "reference" or cell.corruption == CLEAN:
            return None
        return DeviceCorruption(cell.corruption, cell.severity, self.seed)

    def provenance(self) -> dict[str, Any]:
        """Settings that determine the pixels, recorded with every result row."""
        return {
            "data_root": str(self.data_root),
            "n_images": self.n_images,
            "seed": self.seed,
            "resize": self.preprocess.resize,
            "crop": self.preprocess.crop,
            "corruption_backend": self.corruption_backend,
        }


@register_dataset("imagenet-c")
def imagenet_c(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,benchmark",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    corruption_backend: str = "reference",
) -> EvalDataset:
    """ImageNet-C (15 benchmark + 4 extra corruptions, severities 1..5, and clean).

    ``data_root`` is read as a pre-rendered set when it holds ``<corruption>/<severity>/`` folders
    (see :mod:`.imagenet_c_disk`), through ``datasets`` when it is ``hf://...`` or a folder of saved ``datasets``
    (see :mod:`.imagenet_c_hub`); otherwise the corruptions are generated on the fly from its clean images, by
    ``corruption_backend`` (see :mod:`..corruptions.backends`).
    """
    names = expand_corruptions(corruptions)
    if data_root is not None:
        from .hub import is_hub_source, open_hub
        from .rendered import looks_rendered, open_rendered

        if is_hub_source(data_root, names):
            require_reference(corruption_backend, "a hub copy of ImageNet-C")
            return open_hub(data_root, names, list(severities), preprocess=preprocess, limit=limit)
        if looks_rendered(data_root):
            require_reference(corruption_backend, f"the pre-rendered set {data_root}")
            return open_rendered(data_root, names, list(severities), preprocess=preprocess, limit=limit)
    return on_the_fly(data_root, names, severities, seed, preprocess, limit, corruption_backend)


STORED = "is read as stored (its corruptions are already rendered); the backend applies only to corruptions " \
         "generated on the fly"


def require_reference(corruption_backend: str, what: str, why: str = STORED) -> None:
    """Refuse an explicit non-reference backend for ``what``, saying ``why`` only the reference applies (by default:
    pre-rendered pixels carry their corruptions).

    A backend that ``auto`` chose (:class:`~..corruptions.backends.AutoBackend`) is not an error: such sets are
    read or generated by the reference path whatever the device.
    """
    if corruption_backend != "reference" and not isinstance(corruption_backend, AutoBackend):
        raise SuiteError(f"--corruption-backend {corruption_backend}: {what} {why}")


def on_the_fly(data_root: str | os.PathLike | None, names: Sequence[str], severities: Sequence[int], seed: int,
               preprocess: Preprocess | None, limit: int | None, corruption_backend: str = "reference",
               name: str = "imagenet-c") -> ImageNetC:
    """A grid of ``names`` x ``severities`` generated on the fly from the clean images of ``data_root``."""
    corruption_backend = check_backend_has(corruption_backend, names)
    root = Path(data_root).expanduser() if data_root is not None else demo_data_root()
    records = evenly_spaced(scan_image_folder(root, keep_unlabelled=True), limit)
    return ImageNetC(records, list(names), list(severities), seed, preprocess or Preprocess(), root, name,
                     corruption_backend)
