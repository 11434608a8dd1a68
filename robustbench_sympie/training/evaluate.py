"""Held-out evaluation of a training run: the downstream model's top-1 on clean, corrupted and enhanced images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .data import HeldOutSet
from .step import Models, as_input, classify

#: the held-out views scored during training: which images, through which enhancer
VIEWS: tuple[str, ...] = ("clean", "corrupted", "enhanced", "enhanced_ema", "enhanced_clean")


@torch.no_grad()
def score_held_out_views(models: Models, held_out: Any, *, batch_size: int, channels_last: bool,
                         count: Callable[[str, torch.Tensor, torch.Tensor], None]) -> None:
    """Call ``count(view, images, labels)`` for every batch of the held-out set and every view of :data:`VIEWS`.

    ``enhanced_clean`` is the EMA enhancer on the clean images (what SyMPIE costs where nothing is wrong). The
    student is evaluated in eval mode and its modes restored afterwards.
    """
    modes = {name: m.training for name, m in models.student.named_modules()}
    models.student.eval()
    for start in range(0, len(held_out), batch_size):
        part = slice(start, start + batch_size)
        clean = as_input(held_out.clean[part], channels_last)
        corrupted = as_input(held_out.corrupted[part], channels_last)
        labels = held_out.labels[part]
        count("clean", clean, labels)
        count("corrupted", corrupted, labels)
        count("enhanced", models.student(corrupted), labels)
        count("enhanced_ema", models.ema(corrupted), labels)
        count("enhanced_clean", models.ema(clean), labels)
    for name, module in models.student.named_modules():
        module.training = modes[name]


@torch.no_grad()
def evaluate(models: Models, held_out: HeldOutSet, *, batch_size: int, amp: bool,
             channels_last: bool = False) -> dict[str, float]:
    """Held-out top-1 (%) of the downstream model on the views of :data:`VIEWS`."""
    hits: dict[str, torch.Tensor] = {}

    def count(name: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        correct = (classify(models.classifier, images, amp).argmax(dim=1) == labels).sum()
        hits[name] = hits.get(name, 0) + correct

    score_held_out_views(models, held_out, batch_size=batch_size, channels_last=channels_last, count=count)
    return {name: 100.0 * float(n) / len(held_out) for name, n in hits.items()}
