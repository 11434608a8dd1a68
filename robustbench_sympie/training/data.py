"""Training and held-out data for SyMPIE (Algorithm 1 of Barbato et al., MMSys 2024).

Training samples are clean images resized (shorter side ``resize``) and randomly cropped (``crop``), then
corrupted on the fly with one corruption drawn uniformly from a pool at a severity drawn uniformly from
``0..5`` (0 leaves the crop clean). The run is a *stream* of samples numbered 0, 1, 2, ...: sample ``n``
shows record ``permutation(epoch)[n mod N]`` (a seeded permutation per epoch), and every random choice of
the sample (crop, corruption, severity, corruption noise) comes from a generator seeded by
``(run seed, n, record index)``. Sample ``n`` is therefore the same whatever the number of DataLoader
workers, and a resumed run continues the stream at sample ``step * batch_size``.

Held-out images are centre-cropped and get one fixed corruption each (seeded by the image id), so every
evaluation of a run, and every run with the same seed, sees the same pixels.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..corruptions import Corruption, get_corruption, sample_seed
from ..errors import DataError
from ..imageio import ImageRecord, Preprocess, load_rgb
from .config import HELD_OUT_SEVERITIES, TRAIN_SEVERITIES

log = logging.getLogger(__name__)

# tags keeping the seed sequences of the different random streams apart
_SAMPLE_TAG, _EPOCH_TAG = 1, 2

SampleKey = tuple[int, int]  # (sample number in the run's stream, record index)


@functools.cache
def _corruption(name: str) -> Corruption:
    """Per-process cache of corruption lookups (workers resolve names themselves, so datasets pickle)."""
    return get_corruption(name)


def _worker_init(worker_id: int) -> None:
    """Keep each DataLoader worker on one OpenCV thread (the workers already run in parallel)."""
    try:
        import cv2
    except ImportError:
        return
    cv2.setNumThreads(1)


def _chw(pixels: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 array -> contiguous ``3 x H x W`` uint8 tensor."""
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def _open(record: ImageRecord) -> Image.Image:
    try:
        return load_rgb(record.path)
    except OSError as exc:
        raise DataError(f"cannot read image {record.path}: {exc}") from None


_SKIPPED: set[str] = set()  # unreadable images this process has reported


def _log_skipped(path: object, exc: Exception) -> None:
    if str(path) not in _SKIPPED:
        _SKIPPED.add(str(path))
        log.warning("skipping unreadable image %s (%s)", path, exc)


@dataclass(frozen=True)
class RandomCrop:
    """Resize the shorter side to ``resize`` (bilinear, antialiased), then crop ``crop x crop`` at a random place."""

    resize: int = 256
    crop: int = 224

    def __post_init__(self) -> None:
        if self.crop < 32 or self.resize < self.crop:
            raise ValueError(f"need resize >= crop >= 32 (corruptions need 32 px), got {self.resize}/{self.crop}")

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> np.ndarray:
        """PIL RGB image -> ``crop x crop x 3`` uint8 array; the position comes from ``rng``."""
        import torchvision.transforms.functional as TF

        resized = TF.resize(image, self.resize, antialias=True)
        width, height = resized.size
        top = int(rng.integers(height - self.crop + 1))
        left = int(rng.integers(width - self.crop + 1))
        return np.array(resized.crop((left, top, left + self.crop, top + self.crop)), dtype=np.uint8)


def sample_rng(run_seed: int, number: int, index: int) -> np.random.Generator:
    """The generator of every random choice of sample ``number`` (showing record ``index``) of a run."""
    return np.random.default_rng([_SAMPLE_TAG, run_seed, number, index])


class CorruptedTrainingSet(Dataset):
    """Training samples keyed by ``(sample number, record index)``: random crop + one random corruption.

    ``__getitem__`` returns ``(image uint8 3 x crop x crop, label)``.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        pool: Sequence[str],
        *,
        seed: int,
        geometry: RandomCrop,
        severities: Sequence[int] = TRAIN_SEVERITIES,
    ) -> None:
        if not records:
            raise DataError("no training images")
        if not pool:
            raise ValueError("the corruption pool is empty")
        bad = [s for s in severities if s not in TRAIN_SEVERITIES]
        if bad or not severities:
            raise ValueError(f"training severities must be a non-empty subset of {TRAIN_SEVERITIES}, got {severities}")
        self.records = list(records)
        self.pool = list(pool)
        self.seed = seed
        self.geometry = geometry
        self.severities = list(severities)

    def __len__(self) -> int:
        return len(self.records)

    def draw(self, number: int, index: int) -> tuple[np.ndarray, int, str, int]:
        """Sample ``number`` of the stream: ``(pixels H x W x 3 uint8, label, corruption, severity)``.

        An unreadable image is skipped (logged once per process): the sample shows the next readable record
        instead, drawn as that record would be, so the stream stays the same whatever the workers.
        """
        for step in range(len(self.records)):
            index_shown = (index + step) % len(self.records)
            try:
                image = _open(self.records[index_shown])
            except DataError as exc:
                _log_skipped(self.records[index_shown].path, exc)
                continue
            return self._corrupt(number, index_shown, image)
        raise DataError(f"none of the {len(self.records)} training images can be read")

    def _corrupt(self, number: int, index: int, image: Image.Image) -> tuple[np.ndarray, int, str, int]:
        record = self.records[index]
        rng = sample_rng(self.seed, number, index)
        pixels = self.geometry(image, rng)
        corruption = self.pool[int(rng.integers(len(self.pool)))]
        severity = int(self.severities[int(rng.integers(len(self.severities)))])
        if severity == 0:
            return pixels, record.label, "clean", 0
        pixels = _corruption(corruption)(pixels, severity, int(rng.integers(2**63)))
        return pixels, record.label, corruption, severity

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, int]:
        number, index = key
        pixels, label, _, _ = self.draw(number, index)
        return _chw(pixels), label


class StreamSampler(Sampler[SampleKey]):
    """Keys ``(n, record index)`` for sample numbers ``start <= n < stop``; each epoch is a seeded permutation."""

    def __init__(self, n_records: int, *, seed: int, start: int, stop: int) -> None:
        if n_records <= 0 or not 0 <= start <= stop:
            raise ValueError(f"need n_records > 0 and 0 <= start <= stop, got {n_records}, {start}, {stop}")
        self.n_records, self.seed, self.start, self.stop = n_records, seed, start, stop

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of the records in ``epoch``."""
        return np.random.default_rng([_EPOCH_TAG, self.seed, epoch]).permutation(self.n_records)

    def __iter__(self) -> Iterator[SampleKey]:
        epoch, order = -1, np.empty(0, dtype=np.int64)
        for number in range(self.start, self.stop):
            if number // self.n_records != epoch:
                epoch = number // self.n_records
                order = self.permutation(epoch)
            yield number, int(order[number % self.n_records])

    def __len__(self) -> int:
        return self.stop - self.start


def collate_uint8(items: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(image, label)`` pairs into a uint8 ``B x 3 x H x W`` batch (converted to float on the device) and
    ``B`` labels (or ``B x H x W`` label maps)."""
    images, labels = zip(*items, strict=True)
    if isinstance(labels[0], torch.Tensor):  # segmentation: H x W label maps
        return torch.stack(images), torch.stack(labels)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def training_loader(
    dataset: CorruptedTrainingSet,
    *,
    batch_size: int,
    start_step: int,
    stop_step: int,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """Batches of steps ``start_step .. stop_step - 1`` of the run's sample stream."""
    sampler = StreamSampler(len(dataset), seed=dataset.seed, start=start_step * batch_size, stop=stop_step * batch_size)
    extra = {"prefetch_factor": 4, "persistent_workers": True, "worker_init_fn": _worker_init} if workers else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_uint8,
        pin_memory=pin_memory,
        **extra,
    )


# ------------------------------------------------------------------------------------------------
# Held-out data
# ------------------------------------------------------------------------------------------------
def held_out_choice(image_id: str, pool: Sequence[str], severities: Sequence[int], seed: int) -> tuple[str, int]:
    """The fixed ``(corruption, severity)`` of a held-out image, seeded by its id and the run seed."""
    rng = np.random.default_rng(sample_seed(image_id, "held-out", 0, seed))
    return pool[int(rng.integers(len(pool)))], int(severities[int(rng.integers(len(severities)))])


class _HeldOutImages(Dataset):
    """``(clean uint8 3xHxW, corrupted uint8 3xHxW, label)`` per held-out record."""

    def __init__(self, records: Sequence[ImageRecord], choices: Sequence[tuple[str, int]], *, seed: int,
                 preprocess: Preprocess) -> None:
        self.records, self.choices, self.seed, self.preprocess = list(records), list(choices), seed, preprocess

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        """``(clean, corrupted, label, readable)``; an unreadable image gives zeros and ``readable`` False."""
        record = self.records[position]
        corruption, severity = self.choices[position]
        try:
            clean = self.preprocess(_open(record))
        except DataError as exc:
            _log_skipped(record.path, exc)
            empty = torch.zeros(3, self.preprocess.crop, self.preprocess.crop, dtype=torch.uint8)
            return empty, empty, record.label, False
        seed = sample_seed(record.image_id, corruption, severity, self.seed)
        corrupted = _corruption(corruption)(clean, severity, seed)
        return _chw(clean), _chw(corrupted), record.label, True


@dataclass
class HeldOutSet:
    """Held-out images in memory as uint8 tensors: clean and with their fixed corruption."""

    clean: torch.Tensor  # uint8 N x 3 x H x W
    corrupted: torch.Tensor  # uint8 N x 3 x H x W
    labels: torch.Tensor  # int64 N
    image_ids: list[str]
    corruptions: list[str]
    severities: list[int]

    def __len__(self) -> int:
        return len(self.image_ids)

    def to(self, device: torch.device | str) -> HeldOutSet:
        """A copy with the tensors on ``device``."""
        return HeldOutSet(self.clean.to(device), self.corrupted.to(device), self.labels.to(device),
                          self.image_ids, self.corruptions, self.severities)


def build_held_out(
    records: Sequence[ImageRecord],
    pool: Sequence[str],
    *,
    seed: int,
    preprocess: Preprocess,
    severities: Sequence[int] = HELD_OUT_SEVERITIES,
    workers: int = 0,
) -> HeldOutSet:
    """Decode, centre-crop and corrupt the held-out images once (in ``workers`` processes)."""
    if not records:
        raise DataError("no held-out images")
    bad = [s for s in severities if s not in HELD_OUT_SEVERITIES]
    if bad or not severities:
        raise ValueError(f"held-out severities must be a non-empty subset of {HELD_OUT_SEVERITIES}, got {severities}")
    choices = [held_out_choice(r.image_id, pool, severities, seed) for r in records]
    dataset = _HeldOutImages(records, choices, seed=seed, preprocess=preprocess)
    loader = DataLoader(dataset, batch_size=16, num_workers=workers, worker_init_fn=_worker_init if workers else None)
    clean, corrupted, labels, readable = (torch.cat(parts) for parts in zip(*loader, strict=True))
    keep = readable.tolist()
    if not any(keep):
        raise DataError(f"none of the {len(records)} held-out images can be read")
    if not all(keep):
        skipped = [str(r.path) for r, ok in zip(records, keep, strict=True) if not ok]
        log.warning("held-out set: %d unreadable image(s) skipped: %s", len(skipped), ", ".join(skipped))
    return HeldOutSet(clean[readable], corrupted[readable], labels[readable],
                      [r.image_id for r, ok in zip(records, keep, strict=True) if ok],
                      [c for (c, _), ok in zip(choices, keep, strict=True) if ok],
                      [s for (_, s), ok in zip(choices, keep, strict=True) if ok])
