"""Per-sample random streams for batched corruptions: a sample's numbers depend on its own seed alone.

Every sample of a batch carries a 63-bit seed (from ``sample_seed(image id, corruption, severity, run
seed)``). For each random draw a corruption needs, ``uniform``/``normal``/``randint`` seed one torch
generator per sample from (seed, stream) and fill that sample's block of the output in place: the only
Python loop is one generator call per sample (on the CPU spread over torch's threads when there are several:
1.6x faster on 2 cores than drawing the blocks one after another and stacking them; inside ``corrupt_batch``'s
single-threaded CPU chunks, in turn), all pixel arithmetic stays batched. So
a sample's pixels never depend on the batch it is in, its position, the number of workers or shards.
Numbers are identical on one device type; CPU (Mersenne Twister) and CUDA (Philox) streams differ, as
allowed by the contract.

(A counter-based integer hash over the pixel index was measured 25x slower on CPU than torch's
generators, 0.78 s against 0.03 s for 64 x 3 x 224 x 224 normals on 2 cores, and was dropped.)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

from .base import thread_pool

_MASK63 = (1 << 63) - 1


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for sub-stream ``stream`` of sample seed ``seed`` (stable across platforms)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(stream)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MASK63


def _seed_list(seeds: torch.Tensor | Sequence[int]) -> list[int]:
    if isinstance(seeds, torch.Tensor):
        if seeds.dim() != 1:
            raise ValueError(f"seeds must be a 1-D tensor of per-sample seeds, got shape {tuple(seeds.shape)}")
        return [int(s) for s in seeds.tolist()]
    return [int(s) for s in seeds]


#: per-sample blocks smaller than this are drawn on the calling thread (a pool hand-off costs more)
_POOL_MIN_NUMEL = 4096


def _draw(seeds, shape, stream, device, dtype, fill) -> torch.Tensor:
    """``B x *shape`` tensor whose block ``b`` is filled in place by ``fill(block, generator)``, the generator
    seeded from ``(seeds[b], stream)``. On the CPU the blocks are filled on torch's threads (a generator's
    draws are sequential, but each block has its own: same numbers, in any order)."""
    device = torch.device(device)
    seed_list = _seed_list(seeds)
    out = torch.empty((len(seed_list), *shape), dtype=dtype, device=device)

    inference = torch.is_inference_mode_enabled()  # thread-local: the pool's threads take the caller's mode

    def fill_block(index: int) -> None:
        generator = torch.Generator(device=device)
        generator.manual_seed(stream_seed(seed_list[index], stream))
        with torch.inference_mode(inference):
            fill(out[index], generator)

    threads = min(torch.get_num_threads(), len(seed_list))
    if device.type == "cpu" and threads > 1 and math.prod(shape) >= _POOL_MIN_NUMEL:
        list(thread_pool(threads, "rng").map(fill_block, range(len(seed_list))))
    else:
        for index in range(len(seed_list)):
            fill_block(index)
    return out


def uniform(seeds, shape: tuple[int, ...], stream: int = 0, device: torch.device | str = "cpu",
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``B x *shape`` uniform numbers in [0, 1), block ``b`` a function of ``seeds[b]`` and ``stream`` only."""
    return _draw(seeds, shape, stream, device, dtype, lambda block, g: block.uniform_(0, 1, generator=g))


def normal(seeds, shape: tuple[int, ...], stream: int = 0, device: torch.device | str = "cpu",
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``B x *shape`` standard normal numbers, block ``b`` a function of ``seeds[b]`` and ``stream`` only."""
    return _draw(seeds, shape, stream, device, dtype, lambda block, g: block.normal_(generator=g))


def randint(seeds, low: int, high: int, shape: tuple[int, ...], stream: int = 0,
            device: torch.device | str = "cpu", dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """``B x *shape`` integers in [low, high), block ``b`` a function of ``seeds[b]`` and ``stream``
    (int64 and int32 blocks hold the same numbers: torch draws one 32-bit word per value for ranges < 2^32)."""
    return _draw(seeds, shape, stream, device, dtype, lambda block, g: block.random_(low, high, generator=g))


def bits31(seeds, shape: tuple[int, ...], stream: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """``B x *shape`` int32 values of 31 random bits each (uniform in [0, 2^31)), block ``b`` a function of
    ``seeds[b]`` and ``stream`` only: one 32-bit generator word per value, to be split into narrower fields
    (several small integers per word cost less than one :func:`randint` draw each)."""
    return _draw(seeds, shape, stream, device, torch.int32, lambda block, g: block.random_(generator=g))
