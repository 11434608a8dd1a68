"""VizWiz-Classification (Bafghi & Gurari, CVPR 2023): photos taken by blind people, 200 ImageNet categories.

The public release (vizwiz.org, "Image Classification") is an annotation file and the VizWiz image folders::

    DATA_ROOT/annotations.json          (or DATA_ROOT/annotations/annotations.json, or pass the file itself)
        {"categories": [{"id": 291, "wordnet_id": "n02129165"}, ...],    # id: the ImageNet-1k class index
         "images": ["VizWiz_val_00005256.jpg", ...]}
    DATA_ROOT/images/<file>             (or DATA_ROOT/images/{train,val,test}/<file>, or next to the JSON)
    DATA_ROOT/quality_annotations/*.json   optional: VizWiz-ImageQualityIssues files,
        [{"image": "VizWiz_val_00002854.jpg", "flaws": {"FRM": 2, "BLR": 0, ..., "ROT": 5}, "unrecognizable": 0}]

Predictions are restricted to the dataset's categories (the other logits are masked, :meth:`VizWiz.logit_mask`).
The public file has no labels (they stay on the EvalAI server): :func:`predict` and :func:`write_predictions`
produce the file the official example code uploads, a JSON list of ``[image file, ImageNet-1k index]``.
Labelled copies list image records instead of names, ``{"image": ..., "labels": [ImageNet-1k indices],
"flaws": {...}}`` (our extension); a prediction is correct when it is one of the labels, as the challenge scores.
The runner then reports one row for all images (``all``) and one per quality flag (``flag_BLR``, ...), severity 0.

An image has a flag when at least ``min_votes`` of its five crowd votes name it (default 2, our choice: check
it against the paper before comparing numbers). No Hugging Face hub copy is known to us, so only local files
are read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..corruptions import SEVERITIES
from ..errors import DataError
from ..imageio import Preprocess, evenly_spaced, load_rgb
from .base import Cell, GridDatasetMixin, ImageCellDataset, collate_samples
from .imagenet_c import require_reference
from .registry import register_dataset

log = logging.getLogger(__name__)

NAME = "vizwiz"
#: the quality flags of VizWiz-ImageQualityIssues: blur, framing, dark, bright, obstruction, rotation, none, other
QUALITY_FLAGS: tuple[str, ...] = ("BLR", "FRM", "DRK", "BRT", "OBS", "ROT", "NON", "OTH")
ALL = "all"
FLAG_PREFIX = "flag_"
DEFAULT_MIN_VOTES = 2
NUM_CLASSES = 1000
NO_LABEL = -1


@dataclass(frozen=True)
class VizWizImage:
    """One image of the set: file name, path, correct ImageNet-1k indices (empty if unknown) and quality flags."""

    file: str
    path: Path
    labels: tuple[int, ...] = ()
    flags: frozenset[str] = frozenset()


# -- reading the annotation files ----------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    """Parse ``path`` as JSON, with errors that name the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read VizWiz annotations {path}: {exc}") from exc


def find_annotation_file(root: Path) -> Path:
    """``root`` itself when it is a file, else ``root/annotations.json`` or ``root/annotations/annotations.json``."""
    if root.is_file():
        return root
    for candidate in (root / "annotations.json", root / "annotations" / "annotations.json"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root}: no VizWiz-Classification annotations.json (looked for {root}/annotations.json and "
                    f"{root}/annotations/annotations.json); download it from vizwiz.org (Image Classification)")


def find_image_dir(annotation_file: Path) -> Path:
    """The ``images/`` folder next to the annotation file (or its parent's), else the annotation file's folder."""
    for base in (annotation_file.parent, annotation_file.parent.parent):
        if (base / "images").is_dir():
            return base / "images"
    return annotation_file.parent


def image_path(image_dir: Path, file: str) -> Path:
    """``images/<file>``, or ``images/<split>/<file>`` for names ``VizWiz_<split>_<n>.jpg`` as the zips unpack."""
    direct = image_dir / file
    parts = file.split("_")
    if not direct.exists() and len(parts) >= 3 and (image_dir / parts[1] / file).exists():
        return image_dir / parts[1] / file
    return direct


def category_ids(raw: Mapping[str, Any], source: Path) -> tuple[int, ...]:
    """The ImageNet-1k indices of the ``categories`` list, checked."""
    try:
        ids = tuple(int(c["id"]) for c in raw["categories"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: expected 'categories': [{{'id': <ImageNet-1k index>, ...}}, ...]") from exc
    bad = [i for i in ids if not 0 <= i < NUM_CLASSES]
    if bad or not ids:
        raise DataError(f"{source}: category ids must be ImageNet-1k indices 0..999, got {bad or 'none'}")
    return ids


def flags_of(flaws: Mapping[str, int] | Iterable[str], min_votes: int) -> frozenset[str]:
    """Flags with at least ``min_votes`` votes (a vote-count mapping), or the flags listed as names."""
    if isinstance(flaws, Mapping):
        return frozenset(f for f in QUALITY_FLAGS if int(flaws.get(f, 0)) >= min_votes)
    return frozenset(f for f in flaws if f in QUALITY_FLAGS)


def read_quality(paths: Iterable[Path], min_votes: int) -> dict[str, frozenset[str]]:
    """Image file -> flags from VizWiz-ImageQualityIssues files (lists of ``{"image", "flaws"}`` records)."""
    flags: dict[str, frozenset[str]] = {}
    for path in paths:
        records = read_json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a list of {{'image': ..., 'flaws': {{...}}}} records")
        for record in records:
            flags[str(record["image"])] = flags_of(record.get("flaws", {}), min_votes)
    return flags


def quality_files(annotation_file: Path) -> list[Path]:
    """The ``*.json`` files of ``quality_annotations/`` beside or above the annotation file."""
    found: list[Path] = []
    for base in (annotation_file.parent, annotation_file.parent.parent):
        folder = base / "quality_annotations"
        if folder.is_dir():
            found.extend(sorted(folder.glob("*.json")))
    return found


def parse_image(entry: Any, image_dir: Path, quality: Mapping[str, frozenset[str]], min_votes: int) -> VizWizImage:
    """One ``images`` entry: a file name (the public file) or a ``{"image", "labels", "flaws"}`` record."""
    if isinstance(entry, str):
        return VizWizImage(entry, image_path(image_dir, entry), (), quality.get(entry, frozenset()))
    file = str(entry.get("image") or entry.get("file_name") or "")
    if not file:
        raise DataError(f"VizWiz image record without 'image': {entry!r}")
    labels = entry.get("labels", [entry["label"]] if "label" in entry else [])
    flags = flags_of(entry["flaws"], min_votes) if "flaws" in entry else quality.get(file, frozenset())
    return VizWizImage(file, image_path(image_dir, file), tuple(int(x) for x in labels), flags)


# -- the dataset ---------------------------------------------------------------------------------------------------
class VizWizCell(ImageCellDataset):
    """The images of one cell, preprocessed; each target is the set of correct ImageNet-1k indices."""

    def __init__(self, images: Sequence[VizWizImage], preprocess: Preprocess) -> None:
        super().__init__(images)
        self.preprocess = self.geometry = preprocess

    def pixels(self, record: VizWizImage) -> np.ndarray:
        return self.preprocess(load_rgb(record.path))

    def source_file(self, record: VizWizImage) -> Path:
        return record.path  # real photographs: decoded and cropped, nothing else

    def target(self, record: VizWizImage) -> tuple[int, ...]:
        return record.labels

    def image_id(self, record: VizWizImage) -> str:
        return record.file


@dataclass
class VizWiz(GridDatasetMixin):
    """VizWiz-Classification: cells ``all`` and ``flag_<FLAG>`` (severity 0) over the labelled images."""

    images: list[VizWizImage]
    categories: tuple[int, ...]
    annotation_file: Path
    preprocess: Preprocess = field(default_factory=Preprocess)
    wanted: tuple[str, ...] = ()
    min_votes: int = DEFAULT_MIN_VOTES
    name: str = NAME

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def has_labels(self) -> bool:
        return any(image.labels for image in self.images)

    def logit_mask(self) -> torch.Tensor:
        """True for the dataset's ImageNet-1k categories: the runner sets the other logits to -inf."""
        mask = torch.zeros(NUM_CLASSES, dtype=torch.bool)
        mask[list(self.categories)] = True
        return mask

    def members(self, cell: Cell) -> list[VizWizImage]:
        """The labelled images of ``cell``: all of them, or those with the cell's flag."""
        labelled = [image for image in self.images if image.labels]
        if cell.corruption == ALL:
            return labelled
        flag = cell.corruption.removeprefix(FLAG_PREFIX)
        return [image for image in labelled if flag in image.flags]

    def cells(self) -> list[Cell]:
        """``all`` then one cell per quality flag present (only those in ``wanted`` when it names some)."""
        if not self.has_labels:
            raise DataError(f"{self.annotation_file} has no labels (the public test annotations keep them on the "
                            "evaluation server): write the server's prediction file with "
                            "robustbench_sympie.datasets.vizwiz.write_predictions(...) instead")
        cells = [Cell(ALL, 0)] + [Cell(FLAG_PREFIX + f, 0) for f in QUALITY_FLAGS
                                  if any(f in image.flags for image in self.members(Cell(ALL, 0)))]
        chosen = [c for c in cells if c.corruption in self.wanted]
        return chosen or cells

    def cell_dataset(self, cell: Cell) -> VizWizCell:
        return VizWizCell(self.members(cell), self.preprocess)

    def breakdown(self, cell: Cell) -> dict[str, Any]:
        """``quality_flag`` of the ``flag_<FLAG>`` cells (aggregation groups by it)."""
        flag = cell.corruption.removeprefix(FLAG_PREFIX)
        return {"quality_flag": flag} if cell.corruption.startswith(FLAG_PREFIX) else {}

    def provenance(self) -> dict[str, Any]:
        """Settings that determine the results, recorded with every row."""
        return {"data_root": str(self.annotation_file), "n_images": self.n_images, "n_categories": len(self.categories),
                "min_votes": self.min_votes, "resize": self.preprocess.resize, "crop": self.preprocess.crop}


def open_vizwiz(root: str | os.PathLike, *, preprocess: Preprocess | None = None, limit: int | None = None,
                wanted: Sequence[str] = (), min_votes: int = DEFAULT_MIN_VOTES) -> VizWiz:
    """Read the annotation file (and quality files) under ``root``; see the module docstring for the layout."""
    annotation_file = find_annotation_file(Path(root).expanduser())
    raw = read_json(annotation_file)
    if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
        raise DataError(f"{annotation_file}: expected {{'categories': [...], 'images': [...]}}")
    categories = category_ids(raw, annotation_file)
    quality = read_quality(quality_files(annotation_file), min_votes)
    image_dir = find_image_dir(annotation_file)
    images = [parse_image(entry, image_dir, quality, min_votes) for entry in raw["images"]]
    if not images:
        raise DataError(f"{annotation_file}: the 'images' list is empty")
    chosen = evenly_spaced(images, limit)
    return VizWiz(chosen, categories, annotation_file, preprocess or Preprocess(), tuple(wanted), min_votes)


@register_dataset(NAME)
def vizwiz(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    corruption_backend: str = "reference",
) -> VizWiz:
    """VizWiz-Classification from local files, all cells unless ``corruptions`` names ``all``/``flag_<FLAG>``."""
    require_reference(corruption_backend, "VizWiz (real photographs, no synthetic corruption)")
    if data_root is None:
        raise DataError(f"{NAME} needs --data-root: the folder holding VizWiz-Classification's annotations.json "
                        "and images/ (downloads at vizwiz.org, Image Classification)")
    items = [s.strip() for s in corruptions.split(",")] if isinstance(corruptions, str) else list(corruptions)
    wanted = [s for s in items if s == ALL or s.startswith(FLAG_PREFIX)]
    return open_vizwiz(data_root, preprocess=preprocess, limit=limit, wanted=wanted)


# -- predictions for the evaluation server --------------------------------------------------------------------------
@torch.inference_mode()
def predict(dataset: VizWiz, model: Callable[[torch.Tensor], torch.Tensor],
            enhancer: Callable[[torch.Tensor], torch.Tensor] | None = None, *, device: str | torch.device = "cpu",
            batch_size: int = 32, workers: int = 0) -> tuple[list[tuple[str, int]], list[str]]:
    """Top-1 ImageNet-1k index among the dataset's categories for every image; also the unreadable files.

    ``model`` (and ``enhancer``) take RGB in [0, 1], as the suite's classifiers do; modules are moved to ``device``.
    """
    device = torch.device(device)
    for module in (model, enhancer):
        if isinstance(module, torch.nn.Module):
            module.to(device).eval()
    mask = dataset.logit_mask().to(device)
    loader = DataLoader(VizWizCell(dataset.images, dataset.preprocess), batch_size=batch_size,
                        num_workers=workers, collate_fn=collate_samples)
    predictions: list[tuple[str, int]] = []
    errors: list[str] = []
    for batch in loader:
        errors.extend(batch.errors)
        if not batch.image_ids:
            continue
        images = batch.images.to(device).float().div_(255.0)
        logits = model(enhancer(images) if enhancer is not None else images)
        top1 = logits.masked_fill(~mask, float("-inf")).argmax(dim=1).cpu().numpy()
        predictions.extend((file, int(c)) for file, c in zip(batch.image_ids, top1, strict=True))
    for error in errors:
        log.warning("VizWiz: no prediction for unreadable %s", error)
    return predictions, errors


def write_predictions(predictions: Iterable[tuple[str, int]], path: str | os.PathLike) -> Path:
    """Write ``[[image file, ImageNet-1k index], ...]`` as JSON, the format of the official example code."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([[file, int(index)] for file, index in predictions]), encoding="utf-8")
    return path


def accuracy(dataset: VizWiz, predictions: Iterable[tuple[str, int]]) -> dict[str, float]:
    """Top-1 accuracy of ``predictions`` overall and per flag (labelled copies): correct when among the labels."""
    predicted = dict(predictions)
    scores: dict[str, float] = {}
    for cell in dataset.cells():
        members = [image for image in dataset.members(cell) if image.file in predicted]
        hits = [predicted[image.file] in image.labels for image in members]
        scores[cell.corruption] = float(np.mean(hits)) if hits else float("nan")
    return scores
