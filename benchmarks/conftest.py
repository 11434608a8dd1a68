"""Shared benchmark helpers: the device, a synchronised timer and the ratio report printed at the end."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

RATIOS: list[dict[str, str]] = []


def bench_device() -> torch.device:
    """``BENCH_DEVICE`` if set, else cuda when available, else cpu."""
    return torch.device(os.environ.get("BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, synchronising CUDA around each."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def record(benchmark, what: str, value: float, unit: str, ratio_name: str, ratio: float) -> None:
    """Attach a measured ratio to the benchmark's JSON and to the end-of-run table."""
    benchmark.extra_info.update({"value": value, "unit": unit, ratio_name: ratio})
    RATIOS.append({"benchmark": what, "value": f"{value:.4g} {unit}", "ratio": f"{ratio_name} = {ratio:.3g}"})


@pytest.fixture(scope="session")
def device() -> torch.device:
    return bench_device()


def pytest_terminal_summary(terminalreporter) -> None:
    if not RATIOS:
        return
    from tabulate import tabulate

    name = torch.cuda.get_device_name() if bench_device().type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    text = f"device: {name}, torch {torch.__version__}\n\n" + tabulate(RATIOS, headers="keys", tablefmt="github")
    terminalreporter.write_sep("=", "measured ratios")
    terminalreporter.write_line(text)
    if out := os.environ.get("BENCH_REPORT"):
        Path(out).write_text(text + "\n", encoding="utf-8")
