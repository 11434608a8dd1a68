"""Downstream tasks: what a model predicts, how the runner counts it and which columns a results row gets.

A downstream model declares its task with a ``task`` attribute (``"classification"`` when it has none, as every
:class:`~.models.Classifier`); the runner asks :func:`new_counter` for the matching per-cell counter. A counter
has ``n`` (images), ``seconds``, ``update(outputs, targets, image_ids)``, ``columns()`` (the task's results
columns) and ``records(pair_key)`` (per-image records, possibly empty).

* ``classification``: top-1/top-5 hit counts (the runner's :class:`~.runner.CellCounter`, registered by the
  runner, which imports this module);
* ``segmentation``: a confusion matrix over the labelled pixels (:class:`SegmentationCounter`), written in the
  row as ``confusion`` (see :func:`~.metrics.encode_confusion`) beside ``miou``, ``pixel_acc`` and ``n_pixels``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import torch

from .errors import SuiteError
from .metrics import IGNORE_INDEX, ConfusionMatrix, encode_confusion, metrics_of, miou, pixel_accuracy
from .registry import Registry

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"
#: the classification columns a segmentation row fills with NaN (every results row has them)
_NO_CLASSIFICATION = {"n_correct_top1": float("nan"), "n_correct_top5": float("nan"),
                      "top1": float("nan"), "top5": float("nan")}


class Counter(Protocol):
    n: int
    seconds: float

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, image_ids: Sequence[str] = ()) -> None: ...

    def columns(self) -> dict[str, Any]: ...

    def records(self, pair_key: dict[str, Any]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Task:
    """A registered task: its name and the factory of its per-cell counter ``counter(keep_records)``."""

    name: str
    counter: Callable[[bool], Counter]

    @property
    def metrics(self) -> list[str]:
        """The registered metrics of this task (see :mod:`.metrics`)."""
        return metrics_of(self.name)


TASKS: Registry = Registry("task", entry_point_group="robustbench_sympie.tasks",
                           builtin_modules=("robustbench_sympie.runner",))


class SegmentationCounter:
    """Confusion matrix of one (enhancer, segmenter) pair on one cell, accumulated on the device.

    ``outputs`` are ``B x C x H x W`` logits at the label resolution, ``targets`` ``B x H x W`` train ids
    (``ignore_index`` not counted). The matrix is allocated at the first batch from the logits' class count.
    """

    def __init__(self, keep_records: bool = False, ignore_index: int = IGNORE_INDEX) -> None:
        self.n = 0
        self.seconds = 0.0
        self.ignore_index = ignore_index
        self.confusion: ConfusionMatrix | None = None
        self.keep_records = keep_records
        self.image_ids: list[str] = []
        self._per_image: list[torch.Tensor] = []  # B x K x K matrices of each batch (CPU)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, image_ids: Sequence[str] = ()) -> None:
        if outputs.dim() != 4 or outputs.shape[-2:] != targets.shape[-2:]:
            raise SuiteError(f"a segmenter must return B x C x H x W logits at the label resolution "
                             f"{tuple(targets.shape[-2:])}, got {tuple(outputs.shape)}")
        if self.confusion is None:
            self.confusion = ConfusionMatrix(outputs.shape[1], self.ignore_index, outputs.device)
        per_image = self.confusion.update(outputs.argmax(1), targets)
        self.n += int(targets.shape[0])
        if self.keep_records:
            self._per_image.append(per_image.cpu())
            self.image_ids.extend(image_ids)

    def matrix(self):
        """The accumulated ``K x K`` matrix as numpy (empty when no image was counted)."""
        import numpy as np

        return self.confusion.numpy() if self.confusion is not None else np.zeros((0, 0), dtype=np.int64)

    def columns(self) -> dict[str, Any]:
        matrix = self.matrix()
        return {"n": self.n, **_NO_CLASSIFICATION, "task": SEGMENTATION, "n_pixels": int(matrix.sum()),
                "miou": miou(matrix) if matrix.size else float("nan"),
                "pixel_acc": pixel_accuracy(matrix) if matrix.size else float("nan"),
                "confusion": encode_confusion(matrix) if matrix.size else ""}

    def records(self, pair_key: dict[str, Any]) -> pd.DataFrame:
        """Per-image records: ``*pair_key, image_id, n_pixels, miou, pixel_acc, confusion`` (the image's matrix).

        Written to ``OUT/segmentation_records/`` (see :mod:`.records`); they give paired per-image deltas.
        """
        matrices = torch.cat(self._per_image).numpy() if self._per_image else []
        frame = pd.DataFrame({
            "image_id": self.image_ids,
            "n_pixels": [int(m.sum()) for m in matrices],
            "miou": [miou(m) for m in matrices],
            "pixel_acc": [pixel_accuracy(m) for m in matrices],
            "confusion": [encode_confusion(m) for m in matrices],
        })
        for column, value in reversed(list(pair_key.items())):
            frame.insert(0, column, value)
        return frame


# "classification" is registered by the runner next to its counter (CellCounter), which imports this module
TASKS.add(SEGMENTATION, Task(SEGMENTATION, SegmentationCounter), source=__name__)


def task_of(obj: Any) -> str:
    """The task a model or dataset declares (``classification`` when it declares none)."""
    return getattr(obj, "task", CLASSIFICATION)


def new_counter(model: Any, keep_records: bool = False) -> Counter:
    """The per-cell counter of ``model``'s task."""
    return TASKS.get(task_of(model)).counter(keep_records)


def check_tasks(dataset: Any, models: dict[str, Any]) -> None:
    """Refuse models whose task is not the dataset's (a classifier on Cityscapes, a segmenter on ImageNet-C)."""
    wanted = task_of(dataset)
    wrong = [f"{name} ({task_of(model)})" for name, model in models.items() if task_of(model) != wanted]
    if wrong:
        raise SuiteError(f"dataset {dataset.name!r} is a {wanted} dataset, but these models are not: "
                         f"{', '.join(wrong)}")
