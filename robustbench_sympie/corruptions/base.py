"""Registry of image corruptions and the per-sample seeding that makes them reproducible.

A corruption is a function ``fn(image, severity, rng) -> image`` on ``H x W x 3`` uint8 arrays,
``severity`` in 1..5, ``rng`` a :class:`numpy.random.Generator` seeded from
(image id, corruption, severity, run seed) by :func:`sample_seed`. Functions that draw from numpy's
legacy global generator (as ``imagecorruptions`` does) are run inside :func:`legacy_numpy_seed`, so
every sample gets the same pixels whatever the order, subset or number of DataLoader workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..registry import Registry

CorruptionFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: its function and the family it belongs to."""

    name: str
    family: str
    fn: CorruptionFn

    def __call__(self, image: np.ndarray, severity: int, seed: int) -> np.ndarray:
        """Corrupt ``image`` (uint8 HWC) at ``severity``; deterministic in ``seed``."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity of {self.name!r} must be one of {SEVERITIES}, got {severity!r}")
        out = self.fn(image, severity, np.random.default_rng(seed))
        if out.shape != image.shape:
            raise RuntimeError(f"corruption {self.name!r} changed the image shape {image.shape} -> {out.shape}")
        return np.array(out, dtype=np.uint8, order="C")  # writable, contiguous


CORRUPTIONS: Registry = Registry(
    "corruption",
    entry_point_group="robustbench_sympie.corruptions",
    builtin_modules=("robustbench_sympie.corruptions.imagenet_c", "robustbench_sympie.corruptions.colour_warps",
                     "robustbench_sympie.corruptions.imagenet_c_bar"),
)

#: named groups accepted wherever a list of corruptions is
CORRUPTION_GROUPS: dict[str, Callable[[], list[str]]] = {}


def register_corruption(name: str, family: str) -> Callable[[CorruptionFn], CorruptionFn]:
    """Decorator registering ``fn(image, severity, rng)`` as corruption ``name`` of ``family``."""

    def decorator(fn: CorruptionFn) -> CorruptionFn:
        CORRUPTIONS.add(name, Corruption(name, family, fn), source=fn.__module__)
        return fn

    return decorator


def get_corruption(name: str) -> Corruption:
    """The corruption registered as ``name`` (did-you-mean error otherwise)."""
    return CORRUPTIONS.get(name)


def list_corruptions(family: str | None = None) -> list[str]:
    """Names of registered corruptions, optionally only those of ``family``."""
    names = CORRUPTIONS.names()
    return [n for n in names if family is None or CORRUPTIONS.get(n).family == family]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text (joined by U+001F), stable across platforms and Python versions."""
    key = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def sample_seed(image_id: str, corruption: str, severity: int, run_seed: int) -> int:
    """The seed of one corrupted sample: derived from (image id, corruption, severity, run seed)."""
    return derive_seed(image_id, corruption, severity, run_seed)


@contextlib.contextmanager
def legacy_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's and Python's global generators for the duration of the block, then restore them."""
    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
