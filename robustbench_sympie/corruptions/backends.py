"""Corruption backends: where and how the on-the-fly corruptions are computed.

* ``reference``: the published code (``imagecorruptions`` and the suite's numpy corruptions), one image at a time
  in the DataLoader workers. Its pixels are the ones published ImageNet-C numbers come from.
* ``torch``: batched tensor versions (:mod:`.torch_backend`) applied to uint8 batches on the evaluation device,
  so a GPU is fed at its own speed; fidelity to the reference is measured per cell in
  ``leaderboards/corruption_fidelity.md``.

``auto`` (the default) picks ``torch`` on CUDA, where the reference code cannot keep up (about 11 ms per image per
CPU core over the 15 benchmark corruptions), and ``reference`` on CPU and MPS, where the batched code gives no
large speed-up on a few cores and the reference pixels are exact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import SuiteError
from .base import sample_seed

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("reference", "torch")
CHOICES: tuple[str, ...] = ("auto", *BACKENDS)


class AutoBackend(str):
    """A backend that ``auto`` chose (equal to its name): it yields to the reference backend where it does not
    apply (stored sets, corruptions it lacks) instead of raising, as an explicit choice does."""


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> ``torch`` on CUDA, ``reference`` elsewhere; unknown names are an error."""
    if backend == "auto":
        return AutoBackend("torch") if device.type == "cuda" else AutoBackend("reference")
    if backend not in BACKENDS:
        raise SuiteError(f"--corruption-backend {backend!r}: expected one of {', '.join(CHOICES)}")
    return backend


def check_backend_has(backend: str, corruptions: Sequence[str]) -> str:
    """The backend that generates ``corruptions`` (a plain name): ``backend``, or ``reference`` where ``auto``
    chose a backend that lacks one of them; an explicit choice that lacks one is an error naming the backend
    that has it."""
    if backend == "reference":
        return "reference"
    from .torch_backend import TORCH_CORRUPTIONS

    missing = [name for name in corruptions if name != "clean" and name not in TORCH_CORRUPTIONS]
    if missing and isinstance(backend, AutoBackend):
        log.info("corruption(s) %s have no torch implementation: generating them with the reference backend",
                 ", ".join(missing))
        return "reference"
    if missing:
        raise SuiteError(f"corruption(s) {', '.join(missing)} have no torch implementation: use "
                         "--corruption-backend reference, which has them")
    return str(backend)


@dataclass(frozen=True)
class DeviceCorruption:
    """The torch backend's corruption of one cell, applied to a uint8 batch on its device.

    Each image's seed is ``sample_seed(image id, corruption, severity, run seed)``, as on the reference path, so a
    sample's pixels depend on its identity alone (never on its batch, position, worker or shard).
    """

    corruption: str
    severity: int
    run_seed: int

    def seeds(self, image_ids: Sequence[str]) -> torch.Tensor:
        return torch.tensor([sample_seed(i, self.corruption, self.severity, self.run_seed) for i in image_ids],
                            dtype=torch.int64)

    def __call__(self, images: torch.Tensor, image_ids: Sequence[str]) -> torch.Tensor:
        from .torch_backend import get_torch_corruption

        return get_torch_corruption(self.corruption)(images, self.severity, self.seeds(image_ids))
