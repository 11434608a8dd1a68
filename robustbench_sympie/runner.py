"""The grid runner: enhancer x model x (corruption, severity), batched, resumable.

The loop runs cell by cell: each cell's images are decoded and corrupted once, then every pending
(enhancer, model) pair is evaluated on the same batches; the cell's rows are written atomically
as soon as it finishes, so an interrupted run resumes at the first unfinished cell.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from .clean_cache import CleanImageCache, replay_plan
from .corruptions import SEVERITIES
from .corruptions.backends import resolve_backend
from .datasets import Batch, Cell, EvalDataset, collate_samples, create_dataset
from .datasets.base import CorruptInWorkers, ImageCellDataset
from .device import resolve_device
from .device_decode import DeviceDecoder, resolve_decode
from .distributed import DEFAULT_TIMEOUT_S, DistContext, check_resume_shard
from .enhancers import ENHANCERS, Enhancer
from .enhancers.spec import EnhancerSpec, enhancer_kwargs, parse_enhancer_specs
from .errors import SuiteError
from .image_set import image_set_id
from .imageio import Preprocess
from .models import Classifier, create_model
from .provenance import config_hash, run_metadata
from .records import records_frame, write_cell_records
from .results import ResultsStore
from .tasks import CLASSIFICATION, TASKS, Task, check_tasks, new_counter

log = logging.getLogger(__name__)

UNTRAINED_SUFFIX = "[untrained]"
#: provenance that describes the request, not the settings a cell's numbers depend on (kept out of config_hash)
UNHASHED_PROVENANCE = frozenset({"missing_cells", "image_set", "world_size", "shard", "shard_images"})
#: provenance entries hashed only when they differ from these values (the settings of runs made before the
#: entry existed), so that those runs' configuration hashes stay valid
HASHED_UNLESS = {"decode": "workers"}


@dataclass
class SuiteConfig:
    """Everything that defines a run of the suite (the command line maps onto it one to one)."""

    #: enhancer names, optionally with arguments (``"sympie:weights=PATH"``, see :mod:`.enhancers.spec`)
    enhancers: Sequence[str | EnhancerSpec] = ("identity",)
    models: Sequence[str] = ("efficientnet_lite0",)
    dataset: str = "imagenet-c"
    data_root: str | os.PathLike | None = None
    corruptions: str | Sequence[str] = "clean,benchmark"
    severities: Sequence[int] = SEVERITIES
    seed: int = 0
    limit: int | None = None
    resize: int = 256
    crop: int = 224
    batch_size: int = 32
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    device: str = "auto"
    out: str | os.PathLike = "runs/default"
    model_weights: str | None = None
    enhancer_weights: str | None = None
    allow_untrained: bool = False
    progress: bool = True
    #: write per-image records (``OUT/records/*.parquet``) for paired statistics
    records: bool = True
    #: ``auto`` (torch on CUDA, reference elsewhere), ``reference`` or ``torch`` (see :mod:`.corruptions.backends`)
    corruption_backend: str = "auto"
    #: where JPEG files are decoded: ``auto`` (the device on CUDA), ``workers`` or ``device`` (see
    #: :mod:`.device_decode`)
    decode: str = "auto"
    #: ``fp32`` (exact, the default), ``bf16`` or ``fp16`` autocast for enhancers and models
    precision: str = "fp32"
    #: channels-last memory format for the models' inputs and weights
    channels_last: bool = False
    #: ``torch.compile`` the enhancers and models
    compile: bool = False
    #: ``(K, N)``: evaluate only shard K of N of every cell's images (job arrays, see :mod:`.distributed`)
    shard: tuple[int, int] | None = None
    #: seconds a torch.distributed collective waits for the other ranks before the run stops
    dist_timeout: float = DEFAULT_TIMEOUT_S


@dataclass
class Pair:
    """One (enhancer, model) combination of the grid with the names and weights it reports."""

    enhancer_name: str
    model_name: str
    enhancer: Enhancer
    model: Classifier
    enhancer_weights: str
    config_hash: str = ""
    #: whether the enhancer's output was checked for NaN/Inf (on the first batch of the run)
    output_checked: bool = False


def enhancer_specs(config: SuiteConfig) -> list[EnhancerSpec]:
    """The enhancers of ``config`` as specs (names parsed, ``name:key=value`` arguments kept as text)."""
    specs: list[EnhancerSpec] = []
    for item in config.enhancers:
        specs.extend([item] if isinstance(item, EnhancerSpec) else parse_enhancer_specs(item))
    if not specs:
        raise SuiteError("no enhancer selected: give at least one, e.g. --enhancer identity")
    return specs


def _enhancer_class(factory: Any) -> type[Enhancer] | None:
    return factory if isinstance(factory, type) and issubclass(factory, Enhancer) else None


def build_enhancer(spec: EnhancerSpec, model_name: str, default_weights: str | None = None) -> Enhancer:
    """Create the enhancer of ``spec`` for ``model_name``, with its declared hooks (no signature probing).

    ``default_weights`` (``--enhancer-weights``) goes to enhancers that accept weights and were given none.
    """
    factory = ENHANCERS.get(spec.name)
    kwargs = enhancer_kwargs(spec, factory)
    cls = _enhancer_class(factory)
    if cls is not None and cls.depends_on_model:
        kwargs["downstream_model"] = model_name
    if default_weights is not None and cls is not None and cls.accepts_weights:
        kwargs.setdefault("weights", default_weights)
    return factory(**kwargs)


def report_name(spec: EnhancerSpec) -> str:
    """The ``enhancer`` column: the name plus its arguments, less ``weights`` (recorded in ``enhancer_weights``)."""
    return EnhancerSpec(spec.name, {k: v for k, v in spec.args.items() if k != "weights"}).label


def build_pairs(config: SuiteConfig, device: torch.device) -> list[Pair]:
    """Instantiate every model once and every (enhancer, model) pair, refusing unweighted enhancers.

    An enhancer that does not depend on the downstream model is built once and shared by all models, so its
    output is computed once per batch.
    """
    specs = enhancer_specs(config)
    if config.enhancer_weights is not None:
        takers = [s.name for s in specs if (c := _enhancer_class(ENHANCERS.get(s.name))) and c.accepts_weights]
        if not takers:
            raise SuiteError(f"--enhancer-weights was given but none of the enhancers "
                             f"{', '.join(s.name for s in specs)} takes weights")
    shared: dict[str, Enhancer] = {}  # keyed by the spec label
    pairs = []
    for model_name in config.models:
        model = create_model(model_name, weights=config.model_weights).to(device)
        for spec in specs:
            cls = _enhancer_class(ENHANCERS.get(spec.name))
            per_model = cls is not None and cls.depends_on_model
            if per_model or spec.label not in shared:
                enhancer = build_enhancer(spec, model_name, config.enhancer_weights).to(device).eval()
                if not per_model:
                    shared[spec.label] = enhancer
            else:
                enhancer = shared[spec.label]
            reported = report_name(spec)
            if not enhancer.has_weights:
                if not config.allow_untrained:
                    hint = enhancer.weights_hint()
                    raise SuiteError(
                        f"enhancer {spec.name!r} needs trained weights and none are available for model "
                        f"{model_name!r}: pass --enhancer-weights PATH (or {spec.name}:weights=PATH), or "
                        f"--allow-untrained to evaluate the untrained module (reported as "
                        f"'{reported}{UNTRAINED_SUFFIX}')" + (f" ({hint})" if hint else "")
                    )
                reported = reported + UNTRAINED_SUFFIX
            pairs.append(Pair(reported, model_name, enhancer, model, enhancer.weights_description or "none"))
    return pairs


def speed_settings(pairs: list[Pair], config: SuiteConfig) -> list[Pair]:
    """Apply ``--channels-last`` and ``--compile`` to each distinct model and enhancer of ``pairs`` once."""
    if not (config.channels_last or config.compile):
        return pairs
    done: dict[int, Any] = {}

    def convert(module: torch.nn.Module) -> Any:
        if id(module) not in done:
            if config.channels_last:
                module = module.to(memory_format=torch.channels_last)
            done[id(module)] = torch.compile(module) if config.compile else module
        return done[id(module)]

    for pair in pairs:
        pair.model, pair.enhancer = convert(pair.model), convert(pair.enhancer)
    return pairs


class CellCounter:
    """Running top-1/top-5 counts, compute time and (optionally) per-image predictions of one pair on one cell.

    Hits accumulate in tensors on the evaluation device, so counting never synchronises the device; ``top1`` and
    ``top5`` read them (once per cell).
    """

    def __init__(self, keep_records: bool = False) -> None:
        self.n = 0
        self.seconds = 0.0
        self.keep_records = keep_records
        self.image_ids: list[str] = []
        self._hits: torch.Tensor | None = None  # [top-1, top-5] hit counts on the device
        self._chunks: list[tuple[torch.Tensor, ...]] = []

    @property
    def top1(self) -> int:
        return int(self._hits[0]) if self._hits is not None else 0

    @property
    def top5(self) -> int:
        return int(self._hits[1]) if self._hits is not None else 0

    def update(self, logits: torch.Tensor, targets: torch.Tensor, image_ids: Sequence[str] = ()) -> None:
        """Count hits; ``targets`` is ``B`` class indices, or ``B x K`` sets of correct classes padded with -1."""
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top5 == targets[:, None] if targets.dim() == 1 else (top5[:, :, None] == targets[:, None, :]).any(-1)
        self.n += int(targets.shape[0])
        counts = torch.stack([hits[:, 0].sum(), hits.any(dim=1).sum()])
        self._hits = counts if self._hits is None else self._hits + counts
        if self.keep_records:
            first = targets if targets.dim() == 1 else targets[:, 0]
            self._chunks.append((first, top5, hits[:, 0], hits.any(dim=1)))  # moved to the CPU once per cell
            self.image_ids.extend(image_ids)

    def columns(self) -> dict[str, Any]:
        """This counter's columns of a results row."""
        return {"n": self.n, "n_correct_top1": self.top1, "n_correct_top5": self.top5,
                "top1": self.top1 / self.n if self.n else float("nan"),
                "top5": self.top5 / self.n if self.n else float("nan")}

    def records(self, pair_key: dict[str, Any]):
        """This pair's per-image records on the cell (see :mod:`.records`)."""
        if not self._chunks:
            return records_frame(pair_key, [], np.zeros(0), np.zeros((0, 5)), np.zeros(0), np.zeros(0))
        first, top5, correct1, correct5 = (torch.cat(parts).cpu().numpy()
                                           for parts in zip(*self._chunks, strict=True))
        return records_frame(pair_key, self.image_ids, first, top5, correct1, correct5)


TASKS.add(CLASSIFICATION, Task(CLASSIFICATION, CellCounter), overwrite=True, source=__name__)


class PairTimer:
    """Compute time per pair without a device synchronisation per batch: CUDA events, read once per cell."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.events: dict[int, list[tuple[Any, Any]]] = {}
        self.wall: dict[int, float] = {}

    def start(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def stop(self, key: int, started: Any) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.events.setdefault(key, []).append((started, end))
        else:
            self.wall[key] = self.wall.get(key, 0.0) + time.perf_counter() - started

    def seconds(self, key: int) -> float:
        """Total seconds of ``key`` (synchronises CUDA once, at the end of the cell)."""
        if self.cuda:
            torch.cuda.synchronize()
            return sum(s.elapsed_time(e) for s, e in self.events.get(key, [])) / 1000.0
        return self.wall.get(key, 0.0)


PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ComputeSettings:
    """How batches are computed: the cell's on-device decoding and corruption, autocast precision and memory
    format."""

    device_corruption: Callable[[torch.Tensor, Sequence[str]], torch.Tensor] | None = None
    precision: str = "fp32"
    channels_last: bool = False
    #: decodes batches that hold JPEG bytes (``--decode device``)
    decoder: DeviceDecoder | None = None
    #: decoded batches are appended here for later cells to replay (see :mod:`.clean_cache`)
    recorder: list[Batch] | None = None

    def decode(self, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
        """(uint8 images on the device, targets, image ids, messages of the samples that could not be loaded)."""
        images, targets, image_ids, errors = batch.images, batch.targets, batch.image_ids, list(batch.errors)
        if isinstance(images, list):
            if self.decoder is None:
                raise SuiteError("a batch of encoded images reached a cell without a decoder (internal error)")
            images, kept, failed = self.decoder(images, batch.sources)
            errors += failed
            if len(kept) < len(image_ids):
                targets, image_ids = targets[kept], [image_ids[i] for i in kept]
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if self.recorder is not None:  # a CPU batch from the workers is in shared memory: keep a private copy
            kept = images.clone() if images is batch.images and images.device.type == "cpu" else images
            self.recorder.append(Batch(kept, targets, image_ids, errors))
        return images, targets, image_ids, errors

    def prepare(self, images: torch.Tensor, image_ids: Sequence[str]) -> torch.Tensor:
        """uint8 batch on the device -> (corrupted) float batch in [0, 1]."""
        if self.device_corruption is not None:
            images = self.device_corruption(images, image_ids)
        images = images.float().div_(255.0)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def autocast(self, device: torch.device):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)


def check_finite_output(output: torch.Tensor, pair: Pair) -> None:
    """Stop the run when an enhancer returns NaN or Inf (broken weights would otherwise score 0 % silently)."""
    finite = torch.isfinite(output)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        suspect = "its arguments" if pair.enhancer_weights in ("none", "", None) else "its weights and arguments"
        raise SuiteError(
            f"enhancer {pair.enhancer_name!r} with weights {pair.enhancer_weights!r} returned {bad} NaN/Inf value(s) "
            f"of {finite.numel()} on the first batch (model {pair.model_name!r}); expected finite images in [0, 1]: "
            f"check {suspect}"
        )
    pair.output_checked = True


def evaluate_cell(
    loader: Iterable[Batch], pairs: Sequence[Pair], device: torch.device, on_batch: Callable[[int], None] | None = None,
    logit_mask: torch.Tensor | None = None, keep_records: bool = False, compute: ComputeSettings = ComputeSettings(),
) -> tuple[dict[int, CellCounter], float, list[str]]:
    """Evaluate ``pairs`` on the batches of one cell; returns counters, data seconds and load errors.

    Data seconds are the main process's time waiting for batches and decoding and corrupting them on the device
    (host time: on CUDA that is the kernels' launch, as they run asynchronously, outside the pairs' event timing).

    Batches hold uint8 images; they are moved to the device as uint8 and scaled to [0, 1] there. An enhancer
    shared by several pairs runs once per batch. With ``logit_mask``, classes outside the mask get logit -inf
    before top-k (datasets labelled with a subset).
    """
    counters = {id(p): new_counter(p.model, keep_records) for p in pairs}  # the model's task (see .tasks)
    timer = PairTimer(device)
    errors: list[str] = []
    data_seconds = 0.0
    tick = time.perf_counter()
    batch: Batch
    for batch in loader:
        with torch.inference_mode():  # waiting for the batch, decoding and corrupting it count as data time
            images, targets, image_ids, batch_errors = compute.decode(batch, device)
            if targets.numel():
                images = compute.prepare(images, image_ids)
        data_seconds += time.perf_counter() - tick
        errors.extend(batch_errors)
        if targets.numel():
            enhanced: dict[int, torch.Tensor] = {}
            for pair in pairs:
                started = timer.start()
                with torch.inference_mode(), compute.autocast(device):
                    key = id(pair.enhancer)
                    if key not in enhanced:
                        enhanced[key] = pair.enhancer(images)
                    if not pair.output_checked:
                        check_finite_output(enhanced[key], pair)
                    logits = pair.model(enhanced[key]).float()
                    if logit_mask is not None:
                        logits = logits.masked_fill(~logit_mask, float("-inf"))
                    counters[id(pair)].update(logits, targets, image_ids)
                timer.stop(id(pair), started)
        if on_batch is not None:
            on_batch(len(image_ids) + len(batch_errors))
        tick = time.perf_counter()
    for pair in pairs:
        counters[id(pair)].seconds += timer.seconds(id(pair))
    return counters, data_seconds, errors


class CellBatchSampler(Sampler[list[int]]):
    """Batches over concatenated cells that never straddle two cells (so every batch belongs to one cell)."""

    def __init__(self, sizes: Sequence[int], batch_size: int) -> None:
        self.sizes, self.batch_size = list(sizes), batch_size

    def batches_per_cell(self) -> list[int]:
        return [math.ceil(size / self.batch_size) for size in self.sizes]

    def __iter__(self) -> Iterator[list[int]]:
        offset = 0
        for size in self.sizes:
            for start in range(0, size, self.batch_size):
                yield list(range(offset + start, offset + min(start + self.batch_size, size)))
            offset += size

    def __len__(self) -> int:
        return sum(self.batches_per_cell())


def device_sources(part: Dataset) -> tuple[str, ...] | None:
    """The files whose decoded pixels, with the cell's geometry, are a cell's pixels (in order), or None when its
    pixels need the workers: a corruption computed there, a record without such a file, no geometry."""
    if not isinstance(part, ImageCellDataset) or part.geometry is None or not part.records:
        return None
    sources = [part.source_file(record) for record in part.records]
    return None if any(source is None for source in sources) else tuple(str(source) for source in sources)


def effective_decode(dataset: EvalDataset, cells: Sequence[Cell], decode: str) -> str:
    """``device`` when ``decode`` is and at least one cell's pixels can be decoded on the device, else
    ``workers`` (what the provenance records: what happened, not what was asked)."""
    if decode != "device":
        return "workers"
    return "device" if any(device_sources(dataset.cell_dataset(cell)) is not None for cell in cells) else "workers"


@dataclass
class CellStream:
    """One cell's part of the run's data: its number of images, its batches and how they are decoded."""

    size: int
    batches: Iterator[Batch]
    decoder: DeviceDecoder | None = None
    #: where the cell's decoded batches are recorded for later cells (None: not replayed)
    recorder: list[Batch] | None = None
    #: whether the loader's workers already applied the cell's torch corruption (see :func:`corrupts_in_workers`)
    corrupted_in_workers: bool = False


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def corrupts_in_workers(dataset: EvalDataset, cell: Cell, config: SuiteConfig, device: torch.device,
                        files: tuple[str, ...] | None) -> bool:
    """Whether a cell's torch corruption runs in the DataLoader workers rather than in the main process.

    Only on the CPU, for cells whose images the workers decode (``files`` None), and only when the workers have
    cores of their own (cores >= torch's threads + workers). Then they corrupt side by side, as processes, while
    the main process runs the model (in the main process the corruption's threads share one interpreter: 1.5x
    faster on 2 threads than on one, where 2 processes give 2x; ``benchmarks/results/cpu_2core.md``). Without
    spare cores the workers would take the model's cores: on 2 cores with 2 workers, efficientnet_lite0's run
    took 15-25 % longer with the corruption in the workers than in the main process.
    """
    return (device.type == "cpu" and config.workers > 0 and files is None
            and available_cores() >= torch.get_num_threads() + config.workers
            and dataset.device_corruption(cell) is not None)


def cell_batches(dataset: EvalDataset, cells: Sequence[Cell], config: SuiteConfig, device: torch.device,
                 shard: Callable[[Dataset], Dataset] = lambda part: part, decode: str = "workers",
                 ) -> Iterator[CellStream]:
    """The data of each cell, all drawn from a single DataLoader over the whole plan.

    One loader (one set of worker processes, prefetching across cell boundaries) serves every cell, so
    decoding and corrupting the next cell overlaps with evaluating the current one. ``shard`` picks this
    process's images of each cell (see :meth:`.DistContext.shard`); ``decode`` says where JPEG files are
    decoded (see :mod:`.device_decode`). Cells whose pixels are the same clean files as an earlier cell's
    before the corruption (the torch backend's, corrupted in the main process) replay that cell's decoded
    batches instead of loading them again, whether the device or the workers decoded them (see
    :mod:`.clean_cache`).
    """
    cell_datasets = [dataset.cell_dataset(cell) for cell in cells]
    clean_files = [device_sources(part) for part in cell_datasets]  # None: pixels made in the workers
    sources = [files if decode == "device" else None for files in clean_files]  # decoded on the device
    decoders: list[DeviceDecoder | None] = []
    for part, files in zip(cell_datasets, sources, strict=True):
        if files is not None:
            part.ship_encoded = True
        decoders.append(DeviceDecoder(part.geometry, device) if files is not None else None)
    in_workers = [corrupts_in_workers(dataset, cell, config, device, files)
                  for cell, files in zip(cells, sources, strict=True)]
    # cells with equal keys (geometry and clean files) share one decoding, wherever it happens
    keys: list[Hashable | None] = [None if files is None or moved else (part.geometry, files)
                                   for part, files, moved in zip(cell_datasets, clean_files, in_workers, strict=True)]
    parts = [shard(part) for part in cell_datasets]
    sizes = [len(part) for part in parts]
    parts = [CorruptInWorkers(part, dataset.device_corruption(cell)) if moved else part
             for part, cell, moved in zip(parts, cells, in_workers, strict=True)]
    crop = next((part.geometry.crop for part, key in zip(cell_datasets, keys, strict=True) if key is not None), 0)
    replays, last_use = replay_plan(keys, sizes, crop, device)
    loaded = [c for c, source in enumerate(replays) if source is None]
    sampler = CellBatchSampler([sizes[c] for c in loaded], config.batch_size)
    loader = DataLoader(ConcatDataset([parts[c] for c in loaded]), batch_sampler=sampler,
                        num_workers=config.workers, collate_fn=collate_samples, pin_memory=device.type == "cuda")
    stream = iter(loader)
    counts = dict(zip(loaded, sampler.batches_per_cell(), strict=True))
    cache = CleanImageCache()
    last_loaded = loaded[-1]
    for c, source in enumerate(replays):
        if source is None:
            recorder = cache.recorder(c) if c in last_use else None
            yield CellStream(sizes[c], itertools.islice(stream, counts[c]), decoders[c], recorder, in_workers[c])
            if c == last_loaded:  # every loaded cell is consumed: shut the workers down (replays need none)
                del stream, loader
        else:
            yield CellStream(sizes[c], cache.replay(source))
            if last_use[source] == c:
                cache.release(source)


def run_suite(config: SuiteConfig) -> pd.DataFrame:
    """Run the grid described by ``config`` and return the results table (also in ``OUT/results.csv``)."""
    from tqdm.auto import tqdm

    from .output_folder import check_writable_folder

    check_writable_folder(config.out)  # before any image is scanned or model loaded
    dist, device = DistContext.from_env(resolve_device(config.device), config.dist_timeout, config.shard)
    config = replace(config, progress=config.progress and dist.is_main)
    if config.precision not in PRECISIONS:
        raise SuiteError(f"--precision {config.precision!r}: expected one of {', '.join(PRECISIONS)}")
    backend = resolve_backend(config.corruption_backend, device)
    dataset = create_dataset(
        config.dataset, data_root=config.data_root, corruptions=config.corruptions, severities=config.severities,
        seed=config.seed, preprocess=Preprocess(config.resize, config.crop), limit=config.limit,
        corruption_backend=backend,
    )
    decode = effective_decode(dataset, dataset.cells(), resolve_decode(
        config.decode, device, dataset.provenance().get("corruption_backend", backend)))
    pairs = speed_settings(build_pairs(config, device), config)
    check_tasks(dataset, {p.model_name: p.model for p in pairs})
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out)
    # stored sets have no on-the-fly corruption: their pixels are the reference's (on-the-fly sets say which)
    provenance = {"dataset": dataset.name, "corruption_backend": "reference", **dataset.provenance(),
                  "model_weights": config.model_weights or "default", "decode": decode, "precision": config.precision,
                  "channels_last": config.channels_last, "compiled": config.compile,
                  "image_set": image_set_id(dataset), "world_size": dist.world_size,
                  **dist.shard_provenance(dataset)}
    settings = {k: v for k, v in provenance.items()
                if k not in UNHASHED_PROVENANCE and HASHED_UNLESS.get(k, object()) != v}
    dist.check_same("image set", provenance["image_set"])
    for pair in pairs:
        pair.config_hash = config_hash({**settings, "enhancer_weights": pair.enhancer_weights})
    metadata = run_metadata(str(device))
    cells = dataset.cells()
    keys = [{"dataset": dataset.name, "corruption": cell.corruption, "severity": cell.severity} for cell in cells]

    def pending_pairs() -> list[tuple[int, list[int]]]:  # (cell, pending pairs) by position, decided on rank 0
        check_resume_shard(store.frame, config.shard, str(store.path))
        todo = [(i, [j for j, p in enumerate(pairs) if not store.finished(
            {"enhancer": p.enhancer_name, "model": p.model_name, **key}, p.config_hash)]) for i, key in enumerate(keys)]
        return [(i, pending) for i, pending in todo if pending]

    plan = [(cells[i], keys[i], [pairs[j] for j in pending]) for i, pending in dist.broadcast(pending_pairs)]
    if len(plan) < len(cells):
        log.info("resuming: %d of %d cells already done in %s", len(cells) - len(plan), len(cells), store.path)
    mask = dataset.logit_mask()
    mask = None if mask is None else mask.to(device=device, dtype=torch.bool)
    context = RunContext(dataset, config, device, provenance, metadata, out / "skipped.log", mask, dist)

    with tqdm(total=len(cells), initial=len(cells) - len(plan), desc="grid", unit="cell",
              disable=not config.progress, position=0) as grid_bar:
        if plan:
            batches = cell_batches(dataset, [cell for cell, _, _ in plan], config, device, dist.shard, decode)
            for (cell, key, pending), cell_stream in zip(plan, batches, strict=True):
                rows = _run_cell(cell_stream, cell, pending, key, context)
                if dist.is_main:
                    store.append(rows)
                grid_bar.update(1)
    return store.frame


@dataclass
class RunContext:
    """What every cell of a run shares: dataset, settings, device, provenance and where to log skipped files."""

    dataset: EvalDataset
    config: SuiteConfig
    device: torch.device
    provenance: dict[str, Any]
    metadata: dict[str, Any]
    log_path: Path
    logit_mask: torch.Tensor | None
    dist: DistContext = field(default_factory=DistContext)


def _run_cell(data: CellStream, cell: Cell, pairs: Sequence[Pair], key: dict, context: RunContext
              ) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    label = f"{cell.corruption}/{cell.severity}"
    with tqdm(total=data.size, desc=label, unit="img", leave=False, disable=not context.config.progress,
              position=1) as bar:
        corruption = None if data.corrupted_in_workers else context.dataset.device_corruption(cell)
        compute = ComputeSettings(corruption, context.config.precision,
                                  context.config.channels_last, data.decoder, data.recorder)
        counters, data_seconds, errors = context.dist.run_cell(label, len(pairs), lambda: evaluate_cell(
            data.batches, pairs, context.device, bar.update, context.logit_mask, context.config.records, compute))
    if not context.dist.is_main:
        return []  # rank 0 writes the cell
    log_path, provenance, metadata = context.log_path, context.provenance, context.metadata
    if errors:
        log.warning("%s: skipped %d unreadable image(s), listed in %s", label, len(errors), log_path)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.writelines(f"{cell.corruption}\t{cell.severity}\t{e}\n" for e in errors)
    breakdown = context.dataset.breakdown(cell)
    if context.config.records:
        write_cell_records(context.config.out, [
            counters[id(p)].records({"enhancer": p.enhancer_name, "model": p.model_name, **key,
                                     "config_hash": p.config_hash}) for p in pairs])
    rows = []
    for pair in pairs:
        c = counters[id(pair)]
        seconds = c.seconds + data_seconds / len(pairs)
        rows.append({
            "enhancer": pair.enhancer_name, "model": pair.model_name, **key, **breakdown,
            **c.columns(),
            "n_skipped": len(errors), "seconds": round(seconds, 4),
            "images_per_second": round(c.n / seconds, 2) if seconds > 0 else float("nan"),
            "compute_seconds": round(c.seconds, 4), "data_seconds": round(data_seconds, 4),
            "enhancer_weights": pair.enhancer_weights, "config_hash": pair.config_hash,
            **provenance, **metadata,
        })
    return rows
