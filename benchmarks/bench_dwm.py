"""Timing of the SyMPIE DWM (batched vs per-image reference) and of the full enhancer.

Run with ``pytest benchmarks/bench_dwm.py --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from robustbench_sympie.enhancers.sympie import Sympie, warp, warp_reference

CASES = {"b64_224": (64, 224, 224), "b1_1080p": (1, 1080, 1920)}


def _inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(batch, 37, generator=gen) * 0.1
    return torch.randn(batch, 3, height, width, generator=gen), params


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fn", [warp, warp_reference], ids=["batched", "reference"])
def test_dwm(benchmark, case: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    benchmark.group = f"dwm-{case}"
    x, params = _inputs(*CASES[case])
    with torch.no_grad():
        benchmark(fn, x, params)


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), (1, 3, 1080, 1920)], ids=["224", "1080p"])
def test_sympie_forward(benchmark, shape: tuple[int, ...]) -> None:
    benchmark.group = "sympie-forward"
    enhancer = Sympie(weights=None).eval()
    images = torch.rand(shape)
    with torch.no_grad():
        benchmark(enhancer, images)
