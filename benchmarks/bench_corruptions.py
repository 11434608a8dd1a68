"""Corruption throughput, numpy reference vs batched torch backend, at severity 3 on a batch of 224 x 224 images.

Per corruption: the reference renders the batch with per-image calls on one core (``cv2.setNumThreads(1)``);
the torch backend renders it in one batched ``corrupt_batch`` call on the CPU, with one thread (like for like
with the reference) and with torch's default threads, and, when available, on CUDA. Each case first times one
cold call (the start-up cost: imports, JIT, caches, CUDA context and kernels), then runs ``WARMUP_ROUNDS``
warm-up rounds and ``ROUNDS`` timed rounds; the reported images/s is the steady state (median round).
Torch rows also give the speed-up over the reference's steady
state when it ran in the same session. Missing torch versions and absent CUDA are skipped.

``python -m pytest benchmarks/bench_corruptions.py --benchmark-only -q`` (``-k snow`` for one corruption;
``BENCH_CORRUPTION_BATCH`` / ``BENCH_CORRUPTION_ROUNDS`` override 64 images / 5 rounds).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import time

import numpy as np
import pytest
import torch
from conftest import RATIOS, record

from robustbench_sympie.corruptions import get_corruption, sample_seed
from robustbench_sympie.corruptions.colour_warps import COLOUR_WARPS
from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.imageio import Preprocess, load_rgb

SEVERITY = 3
BATCH = int(os.environ.get("BENCH_CORRUPTION_BATCH", "64"))
ROUNDS = int(os.environ.get("BENCH_CORRUPTION_ROUNDS", "5"))
WARMUP_ROUNDS = 1
NAMES = list(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS + COLOUR_WARPS)
BACKENDS = ("reference", "torch-cpu-1", "torch-cpu", "torch-cuda")
CASES = [(name, backend) for name in NAMES for backend in BACKENDS]  # reference first, for the speed-up

#: steady-state seconds per batch, by (corruption, backend), filled as the cases run (reference first): the
#: torch rows' speed-ups and the totals over the 15 benchmark corruptions
_STEADY_SECONDS: dict[tuple[str, str], float] = {}


def _torch_corruptions() -> dict:
    for module in ("noise", "blur", "weather", "digital", "colour_warps", "cbar"):
        with contextlib.suppress(ImportError):  # not written yet
            importlib.import_module(f"robustbench_sympie.corruptions.torch_backend.{module}")
    from robustbench_sympie.corruptions.torch_backend import base

    return base.TORCH_CORRUPTIONS


@pytest.fixture(scope="module", autouse=True)
def benchmark_totals():
    """After the cases: per backend, the total steady time per image over the 15 benchmark corruptions, and the
    torch backend's speed-up over the reference on as many worker processes as torch had threads (a reference
    worker renders one image at a time on one core, so n workers are taken as n times one core's rate)."""
    yield
    reference = [_STEADY_SECONDS.get((name, "reference")) for name in BENCHMARK_CORRUPTIONS]
    if None in reference:
        return  # a -k selection: no total
    reference_ms = sum(reference) / BATCH * 1000
    RATIOS.append({"benchmark": "15 benchmark corruptions, reference, total per image",
                   "value": f"{reference_ms:.4g} ms on 1 core",
                   "ratio": f"images/s on 1 core = {1000 / reference_ms:.3g}"})
    for backend, threads in (("torch-cpu-1", 1), ("torch-cpu", torch.get_num_threads())):
        steady = [_STEADY_SECONDS.get((name, backend)) for name in BENCHMARK_CORRUPTIONS]
        if None in steady:
            continue
        torch_ms = sum(steady) / BATCH * 1000
        speed_up = reference_ms / threads / torch_ms
        RATIOS.append({"benchmark": f"15 benchmark corruptions, torch cpu ({threads} thread(s)), total per image",
                       "value": f"{torch_ms:.4g} ms",
                       "ratio": f"speed-up vs reference on {threads} worker(s) = {speed_up:.3g}"})


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """``BATCH x 224 x 224 x 3`` uint8: the demo images (repeated if there are fewer), ``Preprocess(256, 224)``."""
    paths = sorted(demo_data_root().glob("*.JPEG"))
    preprocess = Preprocess(256, 224)
    loaded = [preprocess(load_rgb(p)) for p in paths[:BATCH]]
    return np.stack([loaded[i % len(loaded)] for i in range(BATCH)])


def _seeds(name: str) -> list[int]:
    return [sample_seed(f"bench-{i}", name, SEVERITY, 0) for i in range(BATCH)]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize(("name", "backend"), CASES, ids=[f"{n}-{b}" for n, b in CASES])
def test_corruption_throughput(benchmark, images, name: str, backend: str) -> None:
    seeds = _seeds(name)
    if backend == "reference":
        import cv2

        corruption = get_corruption(name)
        threads = cv2.getNumThreads()

        def run() -> None:
            for image, seed in zip(images, seeds, strict=True):
                corruption(image, SEVERITY, seed)

        cv2.setNumThreads(1)
        try:
            first = _timed(run)
            benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)
        finally:
            cv2.setNumThreads(threads)
        steady = benchmark.stats.stats.median
        what, unit = f"{name} (severity {SEVERITY}), reference, per image", "images/s on 1 core"
        ratio_name, ratio = f"first call {first:.3g} s, steady {steady:.3g} s per {BATCH}; start-up extra s", \
            max(first - steady, 0.0)
    else:
        device = torch.device("cuda" if backend == "torch-cuda" else "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            pytest.skip("CUDA is not available")
        registry = _torch_corruptions()
        if name not in registry:
            pytest.skip(f"no torch version of {name!r} yet")
        from robustbench_sympie.corruptions.torch_backend.base import corrupt_batch

        batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        seed_tensor = torch.tensor(seeds, dtype=torch.int64)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def run() -> None:
            corrupt_batch(registry[name], batch, SEVERITY, seed_tensor)
            sync()

        default_threads = torch.get_num_threads()
        if backend == "torch-cpu-1":
            torch.set_num_threads(1)
        try:
            threads = f"{torch.get_num_threads()} thread(s)" if device.type == "cpu" else torch.cuda.get_device_name()
            sync()
            first = _timed(run)
            benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1)
        finally:
            torch.set_num_threads(default_threads)
        steady = benchmark.stats.stats.median
        what, unit = f"{name} (severity {SEVERITY}), torch {device.type}, batch {BATCH}", f"images/s ({threads})"
        reference = _STEADY_SECONDS.get((name, "reference"), math.nan)
        ratio_name = (f"first call {first:.3g} s, steady {steady:.3g} s per {BATCH}; "
                      "speed-up vs reference (1 core)")
        ratio = reference / steady
    _STEADY_SECONDS[name, backend] = steady
    benchmark.extra_info.update({"first_call_seconds": first, "steady_seconds_per_batch": steady, "batch": BATCH,
                                 "rounds": ROUNDS, "warmup_rounds": WARMUP_ROUNDS, "backend": backend})
    record(benchmark, what, BATCH / steady, unit, ratio_name, ratio)
