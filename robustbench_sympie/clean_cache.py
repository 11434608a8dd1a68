"""Decode once per run: the clean crops of on-the-fly cells kept in memory and replayed for later cells.

With the torch backend, every cell of an on-the-fly grid starts from the same pixels: the clean image files,
decoded and cropped (the corruption follows in the main process, on the device). Decoding them again for each
of the 76 cells of an ImageNet-C grid would make JPEG decoding the bottleneck: of a GPU run (``--decode
device``), and of a CPU run, where the DataLoader workers decode on the cores the model runs on. So the first
cell that decodes a set of files records its uint8 batches (with the failures), and every later cell whose
pixels come from the same files with the same geometry replays them without touching the DataLoader.

A cell is cached only when a later cell replays it, and only when the crops fit in a share of the device's
free memory (a quarter on a GPU, which the model needs too; half of the available RAM on the CPU: 50,000
ImageNet crops take 7.5 GB); otherwise every cell is decoded as usual. Replayed batches are the recorded
batches (same images, order and errors), so results do not depend on the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from .datasets import Batch

log = logging.getLogger(__name__)

#: share of the device's free memory the cache may take, by device type (others: the CUDA share)
MEMORY_SHARE = {"cuda": 0.25, "cpu": 0.5}


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of ``device`` (CUDA: ``mem_get_info``; CPU: the available physical pages); 0 if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return 0
    return 0


def fits(n_images: int, crop: int, device: torch.device) -> bool:
    """Whether ``n_images`` uint8 ``3 x crop x crop`` crops fit in the cache's share of ``device``'s memory."""
    return n_images * 3 * crop * crop <= memory_share(device) * free_memory_bytes(device)


def memory_share(device: torch.device) -> float:
    """The share of ``device``'s free memory the cache may take."""
    return MEMORY_SHARE.get(device.type, MEMORY_SHARE["cuda"])


@dataclass
class CleanImageCache:
    """Recorded device batches by key (the files and geometry the pixels come from)."""

    batches: dict[Hashable, list[Batch]] = field(default_factory=dict)

    def recorder(self, key: Hashable) -> list[Batch]:
        """The list a cell's decoded batches are appended to (see :meth:`.ComputeSettings.decode`)."""
        return self.batches.setdefault(key, [])

    def replay(self, key: Hashable) -> Iterator[Batch]:
        """The recorded batches of ``key``, in order."""
        if key not in self.batches:
            raise KeyError(f"no recorded batches for {key!r}: the cell that decodes them has not run")
        yield from self.batches[key]

    def release(self, key: Hashable) -> None:
        """Free ``key``'s batches (after the last cell that replays them)."""
        self.batches.pop(key, None)


def replay_plan(keys: Sequence[Hashable | None], sizes: Sequence[int], crop: int, device: torch.device
                ) -> tuple[list[int | None], dict[int, int]]:
    """For each cell, the earlier cell it replays (or None), and for each recorded cell, the last cell replaying it.

    ``keys[c]`` is None for a cell that cannot be replayed (pixels computed in the workers).
    """
    first: dict[Hashable, int] = {}
    replays: list[int | None] = []
    last_use: dict[int, int] = {}
    for cell, key in enumerate(keys):
        source = first.get(key) if key is not None else None
        replays.append(source)
        if source is not None:
            last_use[source] = cell
        elif key is not None:
            first[key] = cell
    recorded = sum(sizes[c] for c in last_use)
    if last_use and not fits(recorded, crop, device):
        log.info("not caching the decoded clean images (%d crops of %d px do not fit in %.0f%% of the free memory "
                 "of %s): each cell decodes them again", recorded, crop, 100 * memory_share(device), device)
        return [None] * len(keys), {}
    return replays, last_use
