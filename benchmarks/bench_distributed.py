"""Distributed evaluation on CPU: one process against 2 Gloo processes (torchrun) on a small grid.

Run as a script (``python benchmarks/bench_distributed.py [--images N] [--repeats R]``) or through pytest
(``python -m pytest benchmarks/bench_distributed.py --benchmark-only``). Each configuration runs
``run_suite`` in fresh subprocesses into a fresh folder; reported: the wall time of the whole command (process
start, model load, grid) and the grid throughput from results.csv (images / the cells' seconds, where a
distributed cell's seconds are its slowest rank's). ``torchrun x1`` (WORLD_SIZE=1) never starts a process group,
so it measures the cost of the distributed code path at world size 1. On CPU the aim is the same numbers and no
slowdown at world size 1; the speed-up from 2 processes depends on the cores the machine has free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--model", "efficientnet_lite0", "--enhancer", "identity", "--corruptions", "clean,gaussian_noise",
        "--severities", "3", "--batch-size", "16", "--workers", "0", "--device", "cpu", "--no-progress"]
PLAIN = [sys.executable, "-m", "robustbench_sympie.cli.run_suite"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
#: launcher and extra environment of each configuration (torchrun itself sets OMP_NUM_THREADS=1 for 2 processes)
CONFIGS: dict[str, tuple[list[str], dict[str, str]]] = {
    "1 process, default threads": (PLAIN, {}),
    "1 process, 1 thread": (PLAIN, ONE_THREAD),
    "torchrun x1 (no process group), 1 thread": ([*TORCHRUN, "--nproc-per-node=1", "-m",
                                                  "robustbench_sympie.cli.run_suite"], ONE_THREAD),
    "torchrun x2 (Gloo), 1 thread each": ([*TORCHRUN, "--nproc-per-node=2", "-m", "robustbench_sympie.cli.run_suite"],
                                          ONE_THREAD),
}


def run_once(launcher: list[str], extra_env: dict[str, str], images: int, out: Path
             ) -> tuple[float, float, pd.DataFrame]:
    """(wall seconds, grid images/s, results) of one run of the grid."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    start = time.perf_counter()
    done = subprocess.run([*launcher, *GRID, "--limit", str(images), "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    results = pd.read_csv(out / "results.csv")
    return wall, results["n"].sum() / results["seconds"].sum(), results


def measure(images: int = 48, repeats: int = 2) -> dict[str, dict[str, float]]:
    """Median wall time and grid throughput per configuration; checks that every configuration counts alike.

    The configurations take turns (round robin), so a load change on a shared machine hits them all alike.
    """
    walls: dict[str, list[float]] = {name: [] for name in CONFIGS}
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    counts = None
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for j, (name, (launcher, extra_env)) in enumerate(CONFIGS.items()):
                wall, rate, results = run_once(launcher, extra_env, images, Path(tmp) / f"{j}-{i}")
                walls[name].append(wall)
                rates[name].append(rate)
                mine = results[["corruption", "n", "n_correct_top1", "n_correct_top5"]].to_dict("records")
                assert counts is None or mine == counts, f"{name} counted differently: {mine} vs {counts}"
                counts = mine
    return {name: {"wall_s": statistics.median(walls[name]), "images_per_s": statistics.median(rates[name])}
            for name in CONFIGS}


def report(table: dict[str, dict[str, float]], images: int) -> str:
    base = table["1 process, 1 thread"]
    lines = [f"grid: efficientnet_lite0 x identity x (clean, gaussian_noise/3), {images} images per cell, batch 16, "
             f"CPU ({os.cpu_count()} cores)", "",
             "| configuration | wall time (s) | grid images/s | throughput ratio vs 1 process, 1 thread |",
             "|---|---|---|---|"]
    for name, row in table.items():
        lines.append(f"| {name} | {row['wall_s']:.1f} | {row['images_per_s']:.1f} | "
                     f"{row['images_per_s'] / base['images_per_s']:.2f} |")
    return "\n".join(lines)


def test_distributed_throughput(benchmark) -> None:
    from conftest import record

    table = benchmark.pedantic(lambda: measure(images=32, repeats=1), rounds=1, warmup_rounds=0)
    two = table["torchrun x2 (Gloo), 1 thread each"]["images_per_s"]
    ratio = two / table["1 process, 1 thread"]["images_per_s"]
    record(benchmark, "run_suite, 2 Gloo processes", two, "images/s",
           "2 processes / 1 process", ratio)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(report(measure(args.images, args.repeats), args.images))
