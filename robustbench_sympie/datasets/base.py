"""The evaluation-dataset contract: a grid of cells, each a torch ``Dataset`` of image samples.

Every dataset the suite evaluates implements :class:`EvalDataset`; ``create_dataset`` returns one. A *cell* is
(corruption, severity), ``clean`` is ``("clean", 0)``; each cell's samples are uint8 ``3 x H x W`` images with
their target class(es) and a stable image id (the key of the per-image records). Datasets also say how their
cells break down for aggregation (``breakdown``: e.g. ImageNet-C-Mixed's number of corruptions, VizWiz's
quality flag), which classes their labels can take (``logit_mask``) and what produced their pixels
(``provenance``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..corruptions import CORRUPTION_GROUPS, CORRUPTIONS, SEVERITIES, get_corruption
from ..imageio import NO_WNID, UNLABELLED, ImageRecord

CLEAN = "clean"

#: target of a sample: one class index, the set of accepted class indices (VizWiz's several answers), or an
#: int64 ``H x W`` label map (segmentation)
Target = int | tuple[int, ...] | torch.Tensor


class Cell(NamedTuple):
    """One (corruption, severity) cell of an evaluation grid; clean is ``("clean", 0)``."""

    corruption: str
    severity: int


class Sample(NamedTuple):
    """One image of a cell as the loader yields it."""

    #: uint8 3 x H x W pixels; the file's bytes (uint8, 1-D) when it is left to the device to decode
    #: (see :mod:`..device_decode`); empty when the file could not be read
    image: torch.Tensor
    target: Target  # class index, or the accepted class indices
    image_id: str  # stable id of the source image (path relative to the data root)
    error: str  # '' when the image loaded, else "<path>: <reason>"
    source: str = ""  # the file of an image shipped as bytes (named in the error if the device cannot decode it)
    #: the cell's batch corruption, applied by :func:`collate_samples` in the loader's worker (see
    #: :class:`CorruptInWorkers`); None when the pixels are final or corrupted later on the device
    corruption: Callable[[torch.Tensor, Sequence[str]], torch.Tensor] | None = None


class Batch(NamedTuple):
    """Collated samples of one cell: the images that loaded and the failures."""

    #: uint8 B x 3 x H x W (moved to the device as uint8, scaled there), or, when some images travel as file
    #: bytes for the device to decode, the list of the B samples' tensors (bytes or pixels)
    images: torch.Tensor | list[torch.Tensor]
    targets: torch.Tensor  # int64 B, or B x K accepted classes padded with -1
    image_ids: list[str]  # ids of the B loaded images, in order
    errors: list[str]  # one message per sample that could not be loaded
    sources: Sequence[str] = ()  # the files of the B images, when ``images`` is a list


@runtime_checkable
class EvalDataset(Protocol):
    """What the runner, aggregation and ``build_dataset`` need from an evaluation dataset."""

    #: registry name, written in every results row's ``dataset`` column
    name: str

    @property
    def n_images(self) -> int:
        """Distinct source images over the cells."""

    def cells(self) -> list[Cell]:
        """The cells of the grid, in evaluation order."""

    def cell_dataset(self, cell: Cell) -> Dataset:
        """The torch dataset of one cell, yielding :class:`Sample`."""

    def provenance(self) -> dict[str, Any]:
        """Settings that determine the pixels, recorded with every result row (and hashed)."""

    def breakdown(self, cell: Cell) -> dict[str, Any]:
        """Columns that aggregation may group this cell's rows by (``{}`` when there are none)."""

    def logit_mask(self) -> torch.Tensor | None:
        """Bool mask of the classes the labels can take (logits outside get -inf), or None for all."""

    def device_corruption(self, cell: Cell) -> Callable[[torch.Tensor, Sequence[str]], torch.Tensor] | None:
        """What the runner applies to a cell's uint8 batches on the device (torch backend), or None."""


class GridDatasetMixin:
    """Defaults of the optional parts of :class:`EvalDataset` for plain corruption grids."""

    def breakdown(self, cell: Cell) -> dict[str, Any]:
        return {}

    def logit_mask(self) -> torch.Tensor | None:
        return None

    def device_corruption(self, cell: Cell) -> Callable[[torch.Tensor, Sequence[str]], torch.Tensor] | None:
        return None


class ImageCellDataset(Dataset):
    """Base class of every cell dataset: subclasses say how to get one record's uint8 HWC pixels.

    A record is anything that names one image (an :class:`ImageRecord` by default: ``path``, ``image_id``,
    ``label``); override :meth:`target`, :meth:`image_id` and :meth:`where` for other kinds. Unreadable images
    become a :class:`Sample` with an empty image and an error naming the file, never a crash.
    """

    #: the geometry the pixels get after decoding (``Preprocess``/``FitToCrop``), when :meth:`source_file` says
    #: that decoding a file and this geometry are all that makes a record's pixels
    geometry: Any = None
    #: set by the runner for ``--decode device``: JPEG files whose pixels are their decoded bytes plus
    #: :attr:`geometry` travel as bytes, and the device decodes them
    ship_encoded: bool = False

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def pixels(self, record: Any) -> np.ndarray:  # pragma: no cover - abstract
        """The ``H x W x 3`` uint8 pixels of ``record`` (raise ``OSError`` when unreadable)."""
        raise NotImplementedError

    def target(self, record: Any) -> Target:
        """The class index (or accepted class indices) of ``record``."""
        return record.label

    def image_id(self, record: Any) -> str:
        """The stable id of ``record``'s source image."""
        return record.image_id

    def where(self, record: Any) -> str:
        """How an error message names ``record`` (its file)."""
        return str(record.path)

    def source_file(self, record: Any) -> Path | None:
        """The file whose decoded pixels, with :attr:`geometry` applied, are ``record``'s pixels; None when
        the pixels need more (a corruption computed here) or do not come from one file."""
        return None

    def __getitem__(self, position: int) -> Sample:
        record = self.records[position]
        target, image_id = self.target(record), self.image_id(record)
        try:
            if isinstance(record, ImageRecord) and record.label == UNLABELLED:
                raise OSError(NO_WNID)  # skipped and counted like an unreadable image
            source = self.source_file(record) if self.ship_encoded else None
            if source is not None:
                from ..device_decode import read_jpeg_bytes

                encoded = read_jpeg_bytes(source)
                if encoded is not None:
                    return Sample(encoded, target, image_id, "", str(source))
            pixels = self.pixels(record)  # not a JPEG (or not shipped): decoded here
        except OSError as exc:
            return Sample(torch.empty(0, dtype=torch.uint8), target, image_id, f"{self.where(record)}: {exc}")
        return Sample(torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).contiguous(),
                      target, image_id, "")


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack the loaded samples (uint8) and collect the failures; set-valued targets are padded with -1. Samples
    that carry their cell's corruption (:class:`CorruptInWorkers`) are corrupted here, as one batch.

    When some samples are file bytes (``--decode device``) the images stay a list, with their files.
    """
    good = [s for s in samples if not s.error]
    errors = [s.error for s in samples if s.error]
    targets, image_ids = collate_targets([s.target for s in good]), [s.image_id for s in good]
    corruptions = {id(s.corruption): s.corruption for s in good}
    corruption = next(iter(corruptions.values()), None)
    if len(corruptions) > 1 or (corruption is not None and any(s.image.dim() == 1 for s in good)):
        raise RuntimeError("a batch mixes samples of cells with different corruptions, or file bytes with a "
                           "corruption to apply (internal error)")
    if any(s.image.dim() == 1 for s in good):  # file bytes for the device to decode: they cannot be stacked
        return Batch([s.image for s in good], targets, image_ids, errors, [s.source for s in good])
    images = torch.stack([s.image for s in good]) if good else torch.empty(0, 3, 1, 1, dtype=torch.uint8)
    if corruption is not None:
        images = corruption(images, image_ids)
    return Batch(images, targets, image_ids, errors)


class CorruptInWorkers(Dataset):
    """A cell's dataset whose batches get the cell's torch corruption in the loader's worker processes.

    On the CPU the runner corrupts a cell's uint8 batches where they are collated (:func:`collate_samples`, in
    each DataLoader worker, single-threaded) rather than in the main process between forward passes: the workers
    corrupt side by side, as processes, while the main process runs the model. The pixels are the same either
    way (every sample is seeded by its own identity and the CPU chunks are single-threaded wherever they run).
    """

    def __init__(self, part: Dataset, corruption: Callable[[torch.Tensor, Sequence[str]], torch.Tensor]) -> None:
        self.part, self.corruption = part, corruption

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, position: int) -> Sample:
        return self.part[position]._replace(corruption=self.corruption)


def collate_targets(targets: Sequence[Target]) -> torch.Tensor:
    """``B`` class indices, ``B x K`` accepted classes padded with -1 when any target is a set, or the stacked
    ``B x H x W`` label maps of segmentation samples."""
    if targets and isinstance(targets[0], torch.Tensor):
        return torch.stack(list(targets))
    if not any(isinstance(t, tuple) for t in targets):
        return torch.tensor(list(targets), dtype=torch.long)
    sets = [t if isinstance(t, tuple) else (t,) for t in targets]
    width = max(len(s) for s in sets)
    return torch.tensor([list(s) + [-1] * (width - len(s)) for s in sets], dtype=torch.long)


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


def demo_data_root() -> Path:
    """The small set of real ImageNet validation-style images vendored in the package."""
    return Path(str(resources.files("robustbench_sympie.data").joinpath("demo")))
