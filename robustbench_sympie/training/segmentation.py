"""Training SyMPIE against a frozen semantic segmenter (Algorithm 1 with a per-pixel cross-entropy).

The loop, the two losses, gradient clipping, EMA, checkpoints and the resumable sample stream are those of
:mod:`.loop`; what changes is the data and the held-out score:

* training samples are Cityscapes ``train`` images with their label maps, resized together (shorter side
  ``resize``: image bilinear, labels nearest), cropped together (``crop x crop`` at a random place) and the
  image corrupted as in classification training; ignored pixels (255) become -100, which ``cross_entropy``
  skips, so :func:`.loop.train_step` applies unchanged to ``B x C x H x W`` logits;
* held-out images are Cityscapes ``val`` images resized to shorter side ``resize`` with one fixed corruption each;
  scores are mIoU (%) of the segmenter on clean, corrupted and enhanced images (``held_out_top1`` in the weights'
  metadata then holds these mIoUs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..corruptions import sample_seed
from ..datasets.cityscapes_labels import LABEL_TO_TRAIN
from ..datasets.segmentation import CITYSCAPES_VAL, Layout, SegRecord, load_label_map
from ..imageio import evenly_spaced, load_rgb
from ..metrics import IGNORE_INDEX, ConfusionMatrix, miou
from .config import TrainConfig, TrainingConfigError
from .data import HELD_OUT_SEVERITIES, CorruptedTrainingSet, _corruption, _worker_init, held_out_choice, sample_rng
from .evaluate import score_held_out_views
from .step import Models, classify
from .trainer import TrainResult, _Trainer

CITYSCAPES_TRAIN = Layout("leftImg8bit/train", "gtFine/train", "_leftImg8bit.png", "_gtFine_labelIds.png",
                          "Cityscapes train")
#: the label cross_entropy skips
CE_IGNORE = -100


def _resized(image: Image.Image, labels: np.ndarray, shorter: int) -> tuple[Image.Image, np.ndarray]:
    """Image (bilinear, antialiased) and labels (nearest) resized so that the shorter side is ``shorter``."""
    width, height = image.size
    scale = shorter / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image, labels
    resized_labels = np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST))
    return image.resize(size, Image.BILINEAR, reducing_gap=None), resized_labels


@dataclass(frozen=True)
class PairedRandomCrop:
    """Resize image and labels together (shorter side ``resize``), then crop both at the same random place."""

    resize: int = 512
    crop: int = 512

    def __call__(self, image: Image.Image, labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, labels = _resized(image, labels, self.resize)
        width, height = image.size
        top, left = int(rng.integers(height - self.crop + 1)), int(rng.integers(width - self.crop + 1))
        pixels = np.array(image.crop((left, top, left + self.crop, top + self.crop)), dtype=np.uint8)
        return pixels, labels[top:top + self.crop, left:left + self.crop]


class SegmentationTrainingSet(CorruptedTrainingSet):
    """Training samples ``(image uint8 3 x crop x crop, labels int64 crop x crop)``; ignored pixels are -100."""

    def __init__(self, records: Sequence[SegRecord], pool: Sequence[str], *, seed: int, geometry: PairedRandomCrop,
                 severities: Sequence[int], lookup: np.ndarray | None = LABEL_TO_TRAIN) -> None:
        super().__init__(records, pool, seed=seed, geometry=geometry, severities=severities)  # type: ignore[arg-type]
        self.lookup = lookup

    def draw(self, number: int, index: int) -> tuple[np.ndarray, np.ndarray, str, int]:  # type: ignore[override]
        record = self.records[index]
        rng = sample_rng(self.seed, number, index)
        pixels, labels = self.geometry(load_rgb(record.image), load_label_map(record.label, self.lookup), rng)
        corruption = self.pool[int(rng.integers(len(self.pool)))]
        severity = int(self.severities[int(rng.integers(len(self.severities)))])
        if severity == 0:
            return pixels, labels, "clean", 0
        return _corruption(corruption)(pixels, severity, int(rng.integers(2**63))), labels, corruption, severity

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        pixels, labels, _, _ = self.draw(*key)
        targets = torch.from_numpy(labels.astype(np.int64))
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), targets.masked_fill(
            targets == IGNORE_INDEX, CE_IGNORE)


@dataclass
class SegmentationHeldOut:
    """Held-out images in memory: clean and corrupted uint8 ``N x 3 x H x W``, train-id labels ``N x H x W``."""

    clean: torch.Tensor
    corrupted: torch.Tensor
    labels: torch.Tensor
    image_ids: list[str]

    def __len__(self) -> int:
        return len(self.image_ids)

    def to(self, device: torch.device | str) -> SegmentationHeldOut:
        return SegmentationHeldOut(self.clean.to(device), self.corrupted.to(device), self.labels.to(device),
                                   self.image_ids)


class _HeldOutPairs(Dataset):
    def __init__(self, records: Sequence[SegRecord], pool: Sequence[str], severities: Sequence[int], *, seed: int,
                 resize: int, lookup: np.ndarray | None) -> None:
        self.records, self.pool, self.severities = list(records), list(pool), list(severities)
        self.seed, self.resize, self.lookup = seed, resize, lookup

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        record = self.records[position]
        image, labels = _resized(load_rgb(record.image), load_label_map(record.label, self.lookup), self.resize)
        clean = np.array(image, dtype=np.uint8)
        corruption, severity = held_out_choice(record.image_id, self.pool, self.severities, self.seed)
        corrupted = _corruption(corruption)(clean, severity, sample_seed(record.image_id, corruption, severity,
                                                                         self.seed))
        chw = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in (clean, corrupted)]
        return chw[0], chw[1], torch.from_numpy(labels.astype(np.int64))


def build_segmentation_held_out(records: Sequence[SegRecord], pool: Sequence[str], *, seed: int, resize: int,
                                severities: Sequence[int] = HELD_OUT_SEVERITIES, workers: int = 0,
                                lookup: np.ndarray | None = LABEL_TO_TRAIN) -> SegmentationHeldOut:
    """Decode, resize and corrupt the held-out images once (all must end up the same size, as Cityscapes')."""
    dataset = _HeldOutPairs(records, pool, severities, seed=seed, resize=resize, lookup=lookup)
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, worker_init_fn=_worker_init if workers else None)
    parts = list(loader)
    sizes = {tuple(p[0].shape[-2:]) for p in parts}
    if len(sizes) > 1:
        raise TrainingConfigError(f"held-out images differ in size after resizing ({sorted(sizes)}); use images of "
                                  "one aspect ratio (as Cityscapes val)")
    clean, corrupted, labels = (torch.cat(column) for column in zip(*parts, strict=True))
    return SegmentationHeldOut(clean, corrupted, labels, [r.image_id for r in records])


@torch.no_grad()
def evaluate_segmentation(models: Models, held_out: SegmentationHeldOut, *, batch_size: int, amp: bool,
                          channels_last: bool = False) -> dict[str, float]:
    """Held-out mIoU (%) of the segmenter on clean, corrupted and enhanced (student, EMA) images."""
    matrices: dict[str, ConfusionMatrix] = {}

    def count(name: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        logits = classify(models.classifier, images, amp)
        if name not in matrices:
            matrices[name] = ConfusionMatrix(logits.shape[1], device=logits.device)
        matrices[name].update(logits.argmax(1), labels)

    score_held_out_views(models, held_out, batch_size=batch_size, channels_last=channels_last, count=count)
    return {name: 100.0 * miou(m.numpy()) for name, m in matrices.items()}


class SegmentationTrainer(_Trainer):
    """:class:`.trainer._Trainer` with segmentation data and mIoU held-out scores."""

    lookup: np.ndarray | None = LABEL_TO_TRAIN

    def training_set(self, records: list[SegRecord], pool: list[str]) -> SegmentationTrainingSet:  # type: ignore[override]
        config = self.config
        return SegmentationTrainingSet(records, pool, seed=config.seed,
                                       geometry=PairedRandomCrop(config.resize, config.crop),
                                       severities=config.severities, lookup=self.lookup)

    def held_out_set(self, records: list[SegRecord], pool: list[str]) -> SegmentationHeldOut:  # type: ignore[override]
        return build_segmentation_held_out(records, pool, seed=self.config.seed, resize=self.config.resize,
                                           severities=self.config.val_severities, workers=self.config.workers,
                                           lookup=self.lookup)

    def scores(self) -> dict[str, float]:
        return evaluate_segmentation(self.models, self.held_out, batch_size=max(1, self.config.batch_size // 2),
                                     amp=self.amp, channels_last=self.config.channels_last)


def cityscapes_records(root: str | os.PathLike, val_limit: int | None) -> tuple[list[SegRecord], list[SegRecord]]:
    """Cityscapes ``train`` (training) and ``val`` (held out, thinned to ``val_limit``) from the official layout."""
    root = Path(root).expanduser()
    return CITYSCAPES_TRAIN.records(root), evenly_spaced(CITYSCAPES_VAL.records(root), val_limit)


def train_segmentation(config: TrainConfig, *, train_records: Sequence[SegRecord] | None = None,
                       held_out_records: Sequence[SegRecord] | None = None) -> TrainResult:
    """Train SyMPIE for the frozen segmenter ``config.model`` (e.g. ``deeplabv3_resnet50:weights=PATH``).

    Images come from ``config.data_root`` (Cityscapes: ``train`` for training, ``val`` held out) unless records
    are given; ``config.resize`` is the shorter side images are resized to, ``config.crop`` the training crop.
    """
    config.validate()
    if train_records is None or held_out_records is None:
        if config.data_root is None:
            raise TrainingConfigError("no training data: pass --data-root DIR (the Cityscapes root)")
        found_train, found_val = cityscapes_records(config.data_root, config.val_limit)
        train_records = found_train if train_records is None else train_records
        held_out_records = found_val if held_out_records is None else held_out_records
    return SegmentationTrainer(config, list(train_records), list(held_out_records)).fit()
