"""The grid runner: enhancer x model x (corruption, severity), batched, resumable.

The loop runs cell by cell: each cell's images are decoded and corrupted once, then every pending
(enhancer, model) pair is evaluated on the same batches; the cell's rows are written atomically
as soon as it finishes, so an interrupted run resumes at the first unfinished cell.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import ConcatDataset, DataLoader, Sampler

from .data.clean_folder import Preprocess
from .data.corruptions import SEVERITIES
from .data.datasets import Batch, Cell, collate_samples, create_dataset
from .enhancers import Enhancer, create_enhancer
from .errors import SuiteError
from .image_set import image_set_id
from .models import Classifier, create_model
from .provenance import config_hash, run_metadata
from .results import ResultsStore

log = logging.getLogger(__name__)

UNTRAINED_SUFFIX = "[untrained]"
#: provenance that describes the request, not the settings a cell's numbers depend on (kept out of config_hash)
UNHASHED_PROVENANCE = frozenset({"missing_cells", "image_set"})


@dataclass
class SuiteConfig:
    """Everything that defines a run of the suite (the command line maps onto it one to one)."""

    enhancers: Sequence[str] = ("identity",)
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


def resolve_device(device: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SuiteError(f"--device {device}: expected cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SuiteError(f"--device {device}: CUDA is not available on this machine (use cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SuiteError(f"--device {device}: expected a CUDA device index below {torch.cuda.device_count()}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise SuiteError(f"--device {device}: MPS is not available on this machine (use cpu or auto)")
    return dev


def _build_enhancer(name: str, model_name: str, weights: str | None) -> Enhancer:
    """Create enhancer ``name``, passing the downstream model and weights where its factory takes them."""
    from .enhancers import ENHANCERS

    factory = ENHANCERS.get(name)
    params = inspect.signature(factory).parameters
    kwargs: dict[str, Any] = {}
    if "downstream_model" in params:
        kwargs["downstream_model"] = model_name
    if weights is not None:
        if "weights" not in params:
            raise SuiteError(f"--enhancer-weights was given but enhancer {name!r} takes no weights")
        kwargs["weights"] = weights
    return create_enhancer(name, **kwargs)


def build_pairs(config: SuiteConfig, device: torch.device) -> list[Pair]:
    """Instantiate every model once and every (enhancer, model) pair, refusing unweighted enhancers."""
    pairs = []
    for model_name in config.models:
        model = create_model(model_name, weights=config.model_weights).to(device)
        for enhancer_name in config.enhancers:
            enhancer = _build_enhancer(enhancer_name, model_name, config.enhancer_weights).to(device).eval()
            reported = enhancer_name
            if not enhancer.has_weights:
                if not config.allow_untrained:
                    hint = getattr(enhancer, "weights_hint", None)  # optional: which file, and where to get it
                    hint = f" ({hint()})" if callable(hint) else ""
                    raise SuiteError(
                        f"enhancer {enhancer_name!r} needs trained weights and none are available for model "
                        f"{model_name!r}: pass --enhancer-weights PATH, or --allow-untrained to evaluate the "
                        f"untrained module (reported as '{enhancer_name}{UNTRAINED_SUFFIX}'){hint}"
                    )
                reported = enhancer_name + UNTRAINED_SUFFIX
            pairs.append(Pair(reported, model_name, enhancer, model, enhancer.weights_description or "none"))
    return pairs


class CellCounter:
    """Running top-1/top-5 counts and compute time of one pair on one cell."""

    def __init__(self) -> None:
        self.n = self.top1 = self.top5 = 0
        self.seconds = 0.0

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Count hits; ``labels`` is ``B`` class indices, or ``B x K`` sets of correct classes padded with -1."""
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top5 == labels[:, None] if labels.dim() == 1 else (top5[:, :, None] == labels[:, None, :]).any(-1)
        self.n += int(labels.shape[0])
        self.top1 += int(hits[:, 0].sum())
        self.top5 += int(hits.any(dim=1).sum())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataset_logit_mask(dataset: Any, device: torch.device) -> torch.Tensor | None:
    """The dataset's ``logit_mask()`` (True for the classes it can be labelled with) on ``device``, if it has one."""
    mask = dataset.logit_mask() if callable(getattr(dataset, "logit_mask", None)) else None
    return None if mask is None else mask.to(device=device, dtype=torch.bool)


def check_finite_output(output: torch.Tensor, pair: Pair) -> None:
    """Stop the run when an enhancer returns NaN or Inf (broken weights would otherwise score 0 % silently)."""
    finite = torch.isfinite(output)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise SuiteError(
            f"enhancer {pair.enhancer_name!r} with weights {pair.enhancer_weights!r} returned {bad} NaN/Inf value(s) "
            f"of {finite.numel()} on the first batch (model {pair.model_name!r}); expected finite images in [0, 1]: "
            "check those weights"
        )
    pair.output_checked = True


def evaluate_cell(
    loader: Iterable[Batch], pairs: Sequence[Pair], device: torch.device, on_batch: Callable[[int], None] | None = None,
    logit_mask: torch.Tensor | None = None,
) -> tuple[dict[int, CellCounter], float, list[str]]:
    """Evaluate ``pairs`` on the batches of one cell; returns counters, data seconds and load errors.

    With ``logit_mask``, classes outside the mask get logit -inf before top-k (datasets labelled with a subset).
    """
    counters = {id(p): CellCounter() for p in pairs}
    errors: list[str] = []
    data_seconds = 0.0
    tick = time.perf_counter()
    batch: Batch
    for batch in loader:
        data_seconds += time.perf_counter() - tick
        errors.extend(batch.errors)
        if batch.labels.numel():
            images = batch.images.to(device, non_blocking=True)
            labels = batch.labels.to(device, non_blocking=True)
            enhanced: dict[int, torch.Tensor] = {}
            for pair in pairs:
                start = time.perf_counter()
                with torch.inference_mode():
                    key = id(pair.enhancer)
                    if key not in enhanced:
                        enhanced[key] = pair.enhancer(images)
                    if not pair.output_checked:
                        check_finite_output(enhanced[key], pair)
                    logits = pair.model(enhanced[key])
                    if logit_mask is not None:
                        logits = logits.masked_fill(~logit_mask, float("-inf"))
                    counters[id(pair)].update(logits, labels)
                _sync(device)
                counters[id(pair)].seconds += time.perf_counter() - start
        if on_batch is not None:
            on_batch(len(batch.labels) + len(batch.errors))
        tick = time.perf_counter()
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


def cell_batches(dataset, cells: Sequence[Cell], config: SuiteConfig,
                 device: torch.device) -> Iterator[tuple[int, Iterator[Batch]]]:
    """(number of images, iterator of batches) per cell, all drawn from a single DataLoader over the whole plan.

    One loader (one set of worker processes, prefetching across cell boundaries) serves every cell, so
    decoding and corrupting the next cell overlaps with evaluating the current one.
    """
    parts = [dataset.cell_dataset(cell) for cell in cells]
    sampler = CellBatchSampler([len(part) for part in parts], config.batch_size)
    loader = DataLoader(ConcatDataset(parts), batch_sampler=sampler, num_workers=config.workers,
                        collate_fn=collate_samples, pin_memory=device.type == "cuda")
    stream = iter(loader)
    for size, count in zip(sampler.sizes, sampler.batches_per_cell(), strict=True):
        yield size, itertools.islice(stream, count)


def run_suite(config: SuiteConfig) -> pd.DataFrame:
    """Run the grid described by ``config`` and return the results table (also in ``OUT/results.csv``)."""
    from tqdm.auto import tqdm

    from .output_folder import check_writable_folder

    check_writable_folder(config.out)  # before any image is scanned or model loaded
    dataset = create_dataset(
        config.dataset, data_root=config.data_root, corruptions=config.corruptions, severities=config.severities,
        seed=config.seed, preprocess=Preprocess(config.resize, config.crop), limit=config.limit,
    )
    device = resolve_device(config.device)
    pairs = build_pairs(config, device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out)
    provenance = {"dataset": dataset.name, **dataset.provenance(), "model_weights": config.model_weights or "default",
                  "image_set": image_set_id(dataset)}
    settings = {k: v for k, v in provenance.items() if k not in UNHASHED_PROVENANCE}
    for pair in pairs:
        pair.config_hash = config_hash({**settings, "enhancer_weights": pair.enhancer_weights})
    metadata = run_metadata(str(device))
    cells = dataset.cells()
    plan = []
    for cell in cells:
        key = {"dataset": dataset.name, "corruption": cell.corruption, "severity": cell.severity}
        pending = [p for p in pairs if not store.finished(
            {"enhancer": p.enhancer_name, "model": p.model_name, **key}, p.config_hash)]
        if pending:
            plan.append((cell, key, pending))
    if len(plan) < len(cells):
        log.info("resuming: %d of %d cells already done in %s", len(cells) - len(plan), len(cells), store.path)
    context = RunContext(config, device, provenance, metadata, out / "skipped.log", dataset_logit_mask(dataset, device))

    with tqdm(total=len(cells), initial=len(cells) - len(plan), desc="grid", unit="cell",
              disable=not config.progress, position=0) as grid_bar:
        if plan:
            batches = cell_batches(dataset, [cell for cell, _, _ in plan], config, device)
            for (cell, key, pending), (size, cell_stream) in zip(plan, batches, strict=True):
                store.append(_run_cell(cell_stream, size, cell, pending, key, context))
                grid_bar.update(1)
    return store.frame


@dataclass
class RunContext:
    """What every cell of a run shares: settings, device, provenance and where to log skipped files."""

    config: SuiteConfig
    device: torch.device
    provenance: dict[str, Any]
    metadata: dict[str, Any]
    log_path: Path
    logit_mask: torch.Tensor | None


def _run_cell(batches: Iterable[Batch], n_images: int, cell: Cell, pairs: Sequence[Pair], key: dict,
              context: RunContext) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    label = f"{cell.corruption}/{cell.severity}"
    with tqdm(total=n_images, desc=label, unit="img", leave=False, disable=not context.config.progress,
              position=1) as bar:
        counters, data_seconds, errors = evaluate_cell(batches, pairs, context.device, bar.update,
                                                       context.logit_mask)
    log_path, provenance, metadata = context.log_path, context.provenance, context.metadata
    if errors:
        log.warning("%s: skipped %d unreadable image(s), listed in %s", label, len(errors), log_path)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.writelines(f"{cell.corruption}\t{cell.severity}\t{e}\n" for e in errors)
    rows = []
    for pair in pairs:
        c = counters[id(pair)]
        seconds = c.seconds + data_seconds / len(pairs)
        rows.append({
            "enhancer": pair.enhancer_name, "model": pair.model_name, **key,
            "n": c.n, "n_correct_top1": c.top1, "n_correct_top5": c.top5,
            "top1": c.top1 / c.n if c.n else float("nan"), "top5": c.top5 / c.n if c.n else float("nan"),
            "n_skipped": len(errors), "seconds": round(seconds, 4),
            "images_per_second": round(c.n / seconds, 2) if seconds > 0 else float("nan"),
            "compute_seconds": round(c.seconds, 4), "data_seconds": round(data_seconds, 4),
            "enhancer_weights": pair.enhancer_weights, "config_hash": pair.config_hash,
            **provenance, **metadata,
        })
    return rows
