"""Per-sample random streams for batched corruptions: a sample's numbers depend on its own seed alone.

Every sample of a batch carries a 63-bit seed (from ``sample_seed(image id, corruption, severity, run
seed)``). For each random draw a corruption needs, ``uniform``/``normal``/``randint`` seed one torch
generator per sample from (seed, stream) and draw that sample's block, then stack: the only Python loop
is one generator call per sample, all pixel arithmetic stays batched. So a sample's pixels never depend
on the batch it is in, its position, the number of workers or shards. Numbers are identical on one
device type; CPU (Mersenne Twister) and CUDA (Philox) streams differ, as allowed by the contract.

(A counter-based integer hash over the pixel index was measured 25x slower on CPU than torch's
generators, 0.78 s against 0.03 s for 64 x 3 x 224 x 224 normals on 2 cores, and was dropped.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

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


def _draw(seeds, shape, stream, device, draw) -> torch.Tensor:
    device = torch.device(device)
    blocks = []
    for seed in _seed_list(seeds):
        generator = torch.Generator(device=device)
        generator.manual_seed(stream_seed(seed, stream))
        blocks.append(draw(generator, device))
    if not blocks:
        return draw(None, device).new_empty((0, *shape))
    return torch.stack(blocks)


def uniform(seeds, shape: tuple[int, ...], stream: int = 0, device: torch.device | str = "cpu",
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``B x *shape`` uniform numbers in [0, 1), block ``b`` a function of ``seeds[b]`` and ``stream`` only."""
    return _draw(seeds, shape, stream, device,
                 lambda g, d: torch.rand(shape, generator=g, device=d, dtype=dtype))


def normal(seeds, shape: tuple[int, ...], stream: int = 0, device: torch.device | str = "cpu",
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``B x *shape`` standard normal numbers, block ``b`` a function of ``seeds[b]`` and ``stream`` only."""
    return _draw(seeds, shape, stream, device,
                 lambda g, d: torch.randn(shape, generator=g, device=d, dtype=dtype))


def randint(seeds, low: int, high: int, shape: tuple[int, ...], stream: int = 0,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """``B x *shape`` int64 integers in [low, high), block ``b`` a function of ``seeds[b]`` and ``stream``."""
    return _draw(seeds, shape, stream, device,
                 lambda g, d: torch.randint(low, high, shape, generator=g, device=d))
