"""Multi-process / multi-node evaluation: process group, deterministic image shards and per-cell collectives.

Two ways to split one grid:

* **data-parallel** under ``torchrun`` (``WORLD_SIZE > 1``): every rank evaluates positions ``rank, rank + W, ...``
  of each cell's image list; the counts are summed with ``all_reduce`` and the per-image records gathered to
  rank 0, which alone writes ``results.csv`` and the records, after the collective of each cell succeeded;
* **independent shards** (``--shard K/N``, job arrays): no process group; shard ``K`` evaluates positions
  ``K, K + N, ...`` and writes its own folder; :func:`~.aggregate.merge_shards` sums the shards' cells.

Both compose (shard ``K`` of ``N`` split over ``W`` ranks: positions ``K + N * rank + N * W * j``). No image is ever
repeated to even out ranks (unlike ``DistributedSampler``), so every image is counted exactly once. A plain run
(world size 1) never touches :mod:`torch.distributed`.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import torch
from torch.utils.data import Dataset, Subset

from .errors import DataError, SuiteError

#: seconds a collective may wait for the other ranks before the run stops (``--dist-timeout``)
DEFAULT_TIMEOUT_S = 1800.0
SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")

T = TypeVar("T")
log = logging.getLogger(__name__)


class DistributedRunError(SuiteError):
    """A rank failed (or the process group could not start): the run stops on every rank, no partial cell."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N`` (``K`` counts from 0, like ``$SLURM_ARRAY_TASK_ID``)."""
    match = SHARD_RE.fullmatch(text)
    if not match:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (shard K of N, K counting from 0)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: expected 0 <= K < N (shards are numbered 0..N-1)")
    return index, count


def shard_label(shard: tuple[int, int] | None) -> str:
    """``"K/N"`` (the ``shard`` column), or ``""`` for an unsharded run."""
    return f"{shard[0]}/{shard[1]}" if shard else ""


@dataclass
class DistContext:
    """Where this process stands in the run: its rank among ``world_size`` and the independent shard, if any."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: ``(K, N)`` for ``--shard K/N``, else None
    shard_spec: tuple[int, int] | None = None
    #: the tensors of the collectives live here (cuda:LOCAL_RANK for NCCL, cpu for Gloo)
    comm_device: torch.device = torch.device("cpu")
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_main(self) -> bool:
        """Whether this process writes the outputs and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S,
                 shard: tuple[int, int] | None = None) -> tuple[DistContext, torch.device]:
        """The context of this process and its evaluation device, starting the process group under torchrun.

        With ``WORLD_SIZE > 1`` in the environment the process group is initialised from torchrun's variables
        (NCCL on CUDA, Gloo otherwise; an already initialised group is reused); a failure is an error, never a
        silent copy of the whole grid per rank. A CUDA device without an index becomes ``cuda:LOCAL_RANK``.
        """
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return cls(shard_spec=shard), device
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        if device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
            if missing or not dist.is_available():
                raise DistributedRunError(
                    f"WORLD_SIZE={world} but {', '.join(missing) or 'torch.distributed'} is not available: start "
                    "the run with torchrun (python -m torch.distributed.run), or unset WORLD_SIZE for one process")
            backend = "nccl" if device.type == "cuda" else "gloo"
            try:
                dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
            except Exception as exc:  # noqa: BLE001 - any failure to start is fatal, with its cause
                raise DistributedRunError(f"could not start the {backend} process group (WORLD_SIZE={world}, "
                                          f"RANK={os.environ.get('RANK')}): {exc}") from exc
            atexit.register(_destroy_group)
        if dist.get_world_size() != world:
            raise DistributedRunError(f"WORLD_SIZE={world} but the process group has {dist.get_world_size()} ranks")
        comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
        return cls(dist.get_rank(), world, local_rank, shard, comm, timeout_s), device

    # ---------------------------------------------------------------- sharding
    def positions(self, n: int) -> range:
        """This process's positions among ``n`` images: independent shard first, then the rank within it."""
        index, count = self.shard_spec or (0, 1)
        return range(index + count * self.rank, n, count * self.world_size)

    def shard(self, dataset: Dataset) -> Dataset:
        """The part of one cell's dataset this process evaluates (the dataset itself when unsplit)."""
        if self.world_size == 1 and self.shard_spec is None:
            return dataset
        return Subset(dataset, self.positions(len(dataset)))  # type: ignore[arg-type]

    def shard_provenance(self, dataset: Any) -> dict[str, str]:
        """``shard`` ("K/N") and ``shard_images`` (id of the shard's images) for ``--shard``; ``{}`` otherwise."""
        if self.shard_spec is None:
            return {}
        index, count = self.shard_spec
        records = getattr(dataset, "records", None)
        ids = [getattr(r, "image_id", None) for r in records] if isinstance(records, list | tuple) else []
        if ids and all(isinstance(i, str) for i in ids):
            chosen: Any = sorted(ids[index::count])  # the positions each cell's split takes, as ids
        else:
            from .image_set import image_set_id

            chosen = [image_set_id(dataset), index, count]
        digest = hashlib.sha256(json.dumps(chosen).encode()).hexdigest()[:10]
        return {"shard": shard_label(self.shard_spec), "shard_images": digest}

    # ---------------------------------------------------------------- collectives
    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            with self._collective("barrier"):
                dist.barrier()

    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Turn a collective that fails (a peer died, was killed or timed out) into a one-line run error."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - backend errors have no common public type
            raise DistributedRunError(
                f"rank {self.rank}: {what} failed: another rank died, was killed or did not answer within "
                f"--dist-timeout {self.timeout_s:g} s; the cell in flight is not written ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc

    def broadcast(self, compute: Callable[[], T]) -> T:
        """``compute()`` on rank 0, its value on every rank; an exception on rank 0 stops every rank."""
        if not self.distributed:
            return compute()
        import torch.distributed as dist

        box: list[Any] = [None, None]
        if self.is_main:
            try:
                box = [compute(), None]
            except Exception as exc:  # noqa: BLE001 - sent to the other ranks, then re-raised
                box = [None, exc]
        with self._collective("broadcast of the plan"):
            dist.broadcast_object_list(box, src=0)
        if box[1] is not None:
            if self.is_main:
                raise box[1]
            raise DistributedRunError(f"rank 0 stopped the run: {box[1]}")
        return box[0]

    def check_same(self, what: str, value: Any) -> None:
        """Stop the run unless every rank has the same ``value`` (e.g. the image set each rank scanned)."""
        values = self.all_gather_objects(value)
        if any(v != values[0] for v in values):
            shown = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise DistributedRunError(f"the ranks disagree on the {what} ({shown}); every rank must see the same "
                                      "images and settings (same --data-root contents on every machine)")

    def all_reduce_counts(self, values: Sequence[int], op: str = "sum") -> list[int]:
        """Element-wise sum (or max) of integer counts over the ranks."""
        return [int(v) for v in self._all_reduce(torch.tensor(list(values), dtype=torch.int64), op)]

    def all_reduce_seconds(self, values: Sequence[float]) -> list[float]:
        """Element-wise max of durations over the ranks (the slowest rank sets the cell's wall time)."""
        return [float(v) for v in self._all_reduce(torch.tensor(list(values), dtype=torch.float64), "max")]

    def _all_reduce(self, tensor: torch.Tensor, op: str) -> torch.Tensor:
        if not self.distributed:
            return tensor
        import torch.distributed as dist

        tensor = tensor.to(self.comm_device)
        with self._collective("all_reduce of the counts"):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor.cpu()

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` on every rank, in rank order."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        with self._collective("all_gather"):
            dist.all_gather_object(out, obj)
        return out

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        with self._collective("gather of the records"):
            dist.gather_object(obj, out, dst=0)
        return out

    def run_cell(self, label: str, n_pairs: int, evaluate: Callable[[], tuple[dict[int, Any], float, list[str]]]
                 ) -> tuple[dict[int, Any], float, list[str]]:
        """Evaluate this rank's part of a cell and combine the ranks' counters on rank 0.

        Returns what :func:`~.runner.evaluate_cell` returns; on rank 0 the counters hold the summed counts
        (``n``, ``top1``, ``top5``), the slowest rank's seconds and every rank's records, and the errors are
        every rank's. An exception on any rank stops every rank with a :class:`DistributedRunError` after the
        cell's collective (so nobody waits for a dead peer, and no row of the cell is written).
        """
        if not self.distributed:
            return evaluate()
        failure = ""
        try:
            counters, data_seconds, errors = evaluate()
        except Exception as exc:  # noqa: BLE001 - reported to every rank below
            log.exception("rank %d failed in cell %s", self.rank, label)
            failure = f"{type(exc).__name__}: {exc}"
            counters, data_seconds, errors = {}, 0.0, []
        parts = list(counters.values())
        if any(not hasattr(c, "top1") for c in parts):  # the same pairs on every rank: all stop here together
            raise SuiteError("segmentation grids are not distributed yet (only classification counts are summed "
                             "over ranks): run them in one process, or as independent --shard K/N jobs")
        counts = [1 if failure else 0, len(errors)] + [v for c in parts for v in (c.n, c.top1, c.top5)]
        # a failed rank has no counters: its counts are padded to the shape the others send
        totals = self.all_reduce_counts(counts + [0] * (2 + 3 * n_pairs - len(counts)))
        if totals[0]:
            messages = self.all_gather_objects(failure)
            detail = "; ".join(f"rank {r}: {m}" for r, m in enumerate(messages) if m)
            raise DistributedRunError(f"cell {label}: {totals[0]} rank(s) failed, the run stops and no row of this "
                                      f"cell is written" + (f" ({detail})" if detail else ""))
        seconds = self.all_reduce_seconds([data_seconds] + [c.seconds for c in parts])
        keep_records = bool(parts) and parts[0].keep_records
        gathered = self.gather_objects((errors, parts if keep_records else [])) if keep_records or totals[1] \
            else None
        if not self.is_main:
            return counters, data_seconds, errors
        combined = {}
        for i, key in enumerate(counters):
            n, top1, top5 = totals[2 + 3 * i: 5 + 3 * i]
            ranks = [g[1][i] for g in gathered] if gathered and keep_records else []
            combined[key] = CombinedCounter(n, top1, top5, seconds[1 + i], ranks)
        all_errors = [e for g in gathered for e in g[0]] if gathered else []
        return combined, seconds[0], all_errors


@dataclass
class CombinedCounter:
    """One pair's counts on one cell summed over the ranks (what :class:`~.runner.CellCounter` reports)."""

    n: int
    top1: int
    top5: int
    seconds: float
    #: the ranks' own counters (kept only when per-image records are written)
    parts: list[Any]

    def columns(self) -> dict[str, Any]:
        """The summed counts as results columns (as :meth:`~.runner.CellCounter.columns`)."""
        return {"n": self.n, "n_correct_top1": self.top1, "n_correct_top5": self.top5,
                "top1": self.top1 / self.n if self.n else float("nan"),
                "top5": self.top5 / self.n if self.n else float("nan")}

    def records(self, pair_key: dict[str, Any]) -> pd.DataFrame:
        """Every rank's records of this pair, in image-id order."""
        frames = [p.records(pair_key) for p in self.parts]
        kept = [f for f in frames if len(f)] or frames[:1]
        return pd.concat(kept, ignore_index=True).sort_values("image_id", kind="stable").reset_index(drop=True)


def is_main_process() -> bool:
    """Whether this process is rank 0 of the process group (True without one)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _destroy_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def check_resume_shard(frame: pd.DataFrame, shard: tuple[int, int] | None, where: str) -> None:
    """Refuse to resume a results folder written by another shard (its cells hold other images)."""
    if frame.empty:
        return
    have = set(frame["shard"].dropna().astype(str)) - {""} if "shard" in frame.columns else set()
    want = shard_label(shard)
    if have != ({want} if want else set()):
        found = ", ".join(sorted(have)) or "an unsharded run"
        raise DataError(f"{where} holds results of {'shard ' if have else ''}{found}, not of "
                        f"{'shard ' + want if want else 'an unsharded run'}: use another --out for each shard")
