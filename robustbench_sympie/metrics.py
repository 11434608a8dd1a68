"""Metrics of the suite's tasks, computed from pooled counts so that cells and shards combine exactly.

Classification rows carry hit counts (``n``, ``n_correct_top1``, ``n_correct_top5``); segmentation rows carry a
confusion matrix (``confusion``: rows = ground truth, columns = prediction, pixels labelled ``ignore_index`` are
not counted). Pooling cells is summing those counts; every metric is a function of one pooled row, registered in
:data:`METRICS` under its column name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import DataError
from .registry import Registry

#: label of pixels that no metric counts (Cityscapes' "void" after mapping to train ids)
IGNORE_INDEX = 255


class ConfusionMatrix:
    """A ``K x K`` confusion matrix (ground truth x prediction) accumulated with batched ``bincount`` updates."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Add ``B x H x W`` predicted and target class maps; returns the ``B x K x K`` per-image matrices."""
        k = self.num_classes
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        target = target.to(device=self.matrix.device, dtype=torch.int64).reshape(target.shape[0], -1)
        prediction = prediction.to(device=self.matrix.device, dtype=torch.int64).reshape(target.shape)
        valid = (target != self.ignore_index) & (target >= 0) & (target < k)
        image = torch.arange(target.shape[0], device=target.device)[:, None].expand_as(target)
        index = (image * k * k + target * k + prediction.clamp(0, k - 1))[valid]
        per_image = torch.bincount(index, minlength=target.shape[0] * k * k).view(-1, k, k)
        self.matrix += per_image.sum(0)
        return per_image

    def merge(self, other: ConfusionMatrix | np.ndarray | torch.Tensor) -> ConfusionMatrix:
        """Add another matrix (pooling two cells or shards)."""
        values = other.matrix if isinstance(other, ConfusionMatrix) else torch.as_tensor(other)
        self.matrix += values.to(self.matrix)
        return self

    def numpy(self) -> np.ndarray:
        return self.matrix.cpu().numpy()


# ------------------------------------------------------------------------------------------------
# metrics of a matrix (numpy, so that aggregation never needs torch)
# ------------------------------------------------------------------------------------------------
def intersection_union(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection (true positives) and union (TP + FP + FN) pixel counts."""
    matrix = np.asarray(matrix, dtype=np.int64)
    tp = np.diag(matrix)
    return tp, matrix.sum(0) + matrix.sum(1) - tp


def iou(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for a class absent from both ground truth and prediction."""
    inter, union = intersection_union(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def miou(matrix: np.ndarray) -> float:
    """Mean IoU over the classes present in the ground truth or the prediction (the Cityscapes convention)."""
    values = iou(matrix)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Correctly labelled pixels / labelled pixels."""
    matrix = np.asarray(matrix, dtype=np.int64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")


# ------------------------------------------------------------------------------------------------
# the compact text form of a matrix in a results row
# ------------------------------------------------------------------------------------------------
def encode_confusion(matrix: np.ndarray) -> str:
    """``"K|i,j,count;..."`` listing the non-zero entries (a 19 x 19 Cityscapes matrix is mostly diagonal)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    rows, cols = np.nonzero(matrix)
    return f"{matrix.shape[0]}|" + ";".join(f"{i},{j},{matrix[i, j]}" for i, j in zip(rows, cols, strict=True))


def decode_confusion(text: str) -> np.ndarray:
    """Inverse of :func:`encode_confusion`."""
    try:
        size, _, body = str(text).partition("|")
        matrix = np.zeros((int(size), int(size)), dtype=np.int64)
        for entry in filter(None, body.split(";")):
            i, j, count = (int(v) for v in entry.split(","))
            matrix[i, j] = count
    except ValueError:
        raise DataError(f"not a confusion matrix column value: {str(text)[:60]!r}") from None
    return matrix


def sum_confusions(texts: Iterable[str]) -> np.ndarray:
    """Pool encoded matrices of the same size by summing them."""
    matrices = [decode_confusion(t) for t in texts]
    if not matrices:
        raise DataError("no confusion matrices to pool")
    sizes = {m.shape for m in matrices}
    if len(sizes) > 1:
        raise DataError(f"cannot pool confusion matrices of different sizes {sorted(sizes)}")
    return np.sum(matrices, axis=0)


# ------------------------------------------------------------------------------------------------
# the registry: metric name -> function of one pooled row
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A scalar of one pooled results row (a fraction in [0, 1]) and the task it belongs to."""

    name: str
    task: str
    fn: Callable[[Mapping[str, Any]], float]
    description: str = ""

    def __call__(self, row: Mapping[str, Any]) -> float:
        return self.fn(row)


METRICS: Registry = Registry("metric", entry_point_group="robustbench_sympie.metrics")


def register_metric(name: str, task: str, description: str = ""):
    """Decorator registering ``fn(row) -> float`` as metric ``name`` of ``task``."""

    def decorator(fn: Callable[[Mapping[str, Any]], float]) -> Callable[[Mapping[str, Any]], float]:
        METRICS.add(name, Metric(name, task, fn, description), source=fn.__module__)
        return fn

    return decorator


def metrics_of(task: str) -> list[str]:
    """Names of the registered metrics of ``task``."""
    return [n for n in METRICS.names() if METRICS.get(n).task == task]


def _ratio(hits: Any, n: Any) -> float:
    return float(hits) / float(n) if float(n) else float("nan")


@register_metric("top1", "classification", "top-1 accuracy")
def top1(row: Mapping[str, Any]) -> float:
    return _ratio(row["n_correct_top1"], row["n"])


@register_metric("top5", "classification", "top-5 accuracy")
def top5(row: Mapping[str, Any]) -> float:
    return _ratio(row["n_correct_top5"], row["n"])


@register_metric("miou", "segmentation", "mean IoU over classes present (ignore index 255)")
def miou_metric(row: Mapping[str, Any]) -> float:
    return miou(decode_confusion(row["confusion"]))


@register_metric("pixel_acc", "segmentation", "pixel accuracy over labelled pixels")
def pixel_acc_metric(row: Mapping[str, Any]) -> float:
    return pixel_accuracy(decode_confusion(row["confusion"]))
