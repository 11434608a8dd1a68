"""Corruption throughput on P worker processes, reference vs torch backend: the 15 ImageNet-C benchmark corruptions.

``bench_corruptions.py`` times one process and takes P reference workers as P times one core. This script
measures it: P processes start together (a barrier), each single-threaded (torch and OpenCV limited to one
thread, as in a DataLoader worker), each rendering the 15 benchmark corruptions at severity 3 on its own batch
of ``--images`` 224 x 224 demo images, after one untimed warm-up call per corruption (numba compilation, caches).
The reference renders image by image (``imagecorruptions``, clipped to uint8 as the suite does); the torch
backend one ``corrupt_batch`` call per corruption on the uint8 batch. Time per image on P processes = the
slowest process's time / (P x images), median over ``--rounds``; the speed-up of the torch backend is the ratio
of the two backends' times at the same P.

Usage (a plain script, not part of the tests)::

    python benchmarks/bench_corruption_workers.py --processes 1,2 --out benchmarks/results/corruption_workers_cpu.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shlex
import statistics
import sys
import time
from pathlib import Path

BACKENDS = ("reference", "torch")


def _render(args: tuple) -> list[float]:
    """One worker: the seconds of each round of the 15 corruptions on its batch (started at the barrier)."""
    backend, images, rounds, barrier = args
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from robustbench_sympie.corruptions import get_corruption, sample_seed
    from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS
    from robustbench_sympie.corruptions.torch_backend import get_torch_corruption
    from robustbench_sympie.datasets import demo_data_root
    from robustbench_sympie.imageio import Preprocess, load_rgb

    paths = sorted(demo_data_root().glob("*.JPEG"))
    preprocess = Preprocess(256, 224)
    loaded = [preprocess(load_rgb(p)) for p in paths[:images]]
    pixels = np.stack([loaded[i % len(loaded)] for i in range(images)])
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()

    def render(name: str, severity: int = 3) -> None:
        seeds = [sample_seed(f"bench-{i}", name, severity, 0) for i in range(images)]
        if backend == "reference":
            corruption = get_corruption(name)
            for image, seed in zip(pixels, seeds, strict=True):
                np.uint8(np.clip(corruption(image, severity, seed), 0, 255))
        else:
            with torch.inference_mode():
                get_torch_corruption(name)(batch, severity, torch.tensor(seeds, dtype=torch.int64))

    for name in BENCHMARK_CORRUPTIONS:  # warm-up: first calls apart
        render(name)
    barrier.wait()
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for name in BENCHMARK_CORRUPTIONS:
            render(name)
        seconds.append(time.perf_counter() - start)
        barrier.wait()  # the processes stay in step, round by round
    return seconds


def measure(backend: str, processes: int, images: int, rounds: int) -> float:
    """Milliseconds per image for the 15 corruptions on ``processes`` concurrent workers (median round)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            per_process = pool.map(_render, [(backend, images, rounds, barrier)] * processes)
    slowest = [max(times) for times in zip(*per_process, strict=True)]
    return 1000 * statistics.median(slowest) / (processes * images)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", default="1,2", help="comma-separated worker counts")
    p.add_argument("--images", type=int, default=64, help="images per worker")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="markdown file for the table")
    args = p.parse_args(argv)
    counts = [int(n) for n in args.processes.split(",")]
    ms: dict[tuple[str, int], float] = {}
    for count in counts:
        for backend in BACKENDS:  # alternated, so a slow spell of the machine hits both
            ms[backend, count] = measure(backend, count, args.images, args.rounds)
            print(f"{backend} on {count} process(es): {ms[backend, count]:.2f} ms per image", flush=True)
    import torch

    command = "python benchmarks/bench_corruption_workers.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [f"# Corruption throughput on worker processes (CPU, torch {torch.__version__})", "",
             f"Command: `{command}`", "",
             "The 15 ImageNet-C benchmark corruptions at severity 3, each worker single-threaded on its own batch of "
             f"{args.images} images of 224 x 224, all workers started together; time per image = the slowest "
             f"worker's time / (workers x images), median of {args.rounds} rounds after a warm-up call per "
             "corruption (see the script's docstring).", "",
             "| workers | reference ms per image | torch ms per image | torch speed-up | reference scaling | "
             "torch scaling |", "|---|---|---|---|---|---|"]
    for count in counts:
        ref, tor = ms["reference", count], ms["torch", count]
        scaling = [f"{ms[b, counts[0]] / ms[b, count]:.2f}x" for b in BACKENDS]  # per-image time: first count / this
        lines.append(f"| {count} | {ref:.2f} | {tor:.2f} | {ref / tor:.2f}x | {scaling[0]} | {scaling[1]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
