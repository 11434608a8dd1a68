"""SyMPIE's DWM: one grouped convolution for the batch vs the released per-image loop.

``python -m pytest benchmarks --benchmark-only`` (see the README).
"""

from __future__ import annotations

import pytest
import torch
from conftest import median_seconds, record

from robustbench_sympie.enhancers.sympie import Sympie, warp, warp_reference

CASES = {"batch 64 at 224x224": (64, 224, 224), "one 1920x1080 image": (1, 1080, 1920)}


@pytest.mark.parametrize("case", list(CASES))
def test_dwm_batched_vs_reference(benchmark, device, case: str) -> None:
    gen = torch.Generator().manual_seed(0)
    batch, height, width = CASES[case]
    x = torch.randn(batch, 3, height, width, generator=gen).to(device)
    params = (torch.randn(batch, 37, generator=gen) * 0.1).to(device)
    with torch.inference_mode():
        batched = benchmark(warp, x, params)
        reference = median_seconds(lambda: warp_reference(x, params))
        torch.testing.assert_close(batched, warp_reference(x, params), atol=1e-5, rtol=0)
    mean = benchmark.stats.stats.median
    record(benchmark, f"DWM batched, {case}", batch / mean, "images/s", "reference/batched time", reference / mean)


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), (1, 3, 1080, 1920)], ids=["224x224", "1920x1080"])
def test_sympie_forward(benchmark, device, shape: tuple[int, ...]) -> None:
    enhancer = Sympie(weights=None).eval().to(device)
    images = torch.rand(shape, device=device)
    with torch.inference_mode():
        benchmark(enhancer, images)
        warp_only = median_seconds(lambda: warp(images, torch.zeros(1, 37, device=device)))
    mean = benchmark.stats.stats.median
    record(benchmark, f"SyMPIE forward {shape[2]}x{shape[3]}", mean * 1e3, "ms", "DWM share of SyMPIE time",
           warp_only / mean)
