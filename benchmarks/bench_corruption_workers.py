"""Corruption throughput on P worker processes, reference vs torch backend: the 15 ImageNet-C benchmark corruptions.

``bench_corruptions.py`` times one process and takes P reference workers as P times one core. This script
measures it: P processes start together (a barrier), each single-threaded (torch and OpenCV limited to one
thread, as in a DataLoader worker), each rendering the 15 benchmark corruptions at severity 3 on its own batch
of ``--images`` 224 x 224 demo images, after one untimed warm-up call per corruption on 8 of them (numba
compilation, caches).
The reference renders image by image (``imagecorruptions``, clipped to uint8 as the suite does); the torch
backend one ``corrupt_batch`` call per corruption on the uint8 batch. Time per image on P processes = the
slowest process's time / (P x images), median over ``--rounds``; the speed-up of the torch backend is the ratio
of the two backends' times at the same P.

``--threads T`` adds the torch backend in one process on T threads (``corrupt_batch`` deals a batch of T x
``--images`` images to its thread pool), against the reference on T worker processes measured in the same run:
the in-process comparison of ``bench_corruptions.py`` without its assumption that T reference workers run at T
times one core's rate (on this shared machine they ran 1.6-2.3x faster on 2 workers than on one, depending on
its state).

Usage (a plain script, not part of the tests)::

    python benchmarks/bench_corruption_workers.py --processes 1,2 --threads 2 \
        --out benchmarks/results/corruption_workers_cpu.md
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
    """One worker: the seconds of each round of the 15 corruptions on its batch (started at the barrier), torch on
    ``threads`` threads (the reference always on one)."""
    backend, images, rounds, barrier, threads = args
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(threads if backend == "torch" else 1)
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

    def render(name: str, count: int = images, severity: int = 3) -> None:
        seeds = [sample_seed(f"bench-{i}", name, severity, 0) for i in range(count)]
        if backend == "reference":
            corruption = get_corruption(name)
            for image, seed in zip(pixels[:count], seeds, strict=True):
                np.uint8(np.clip(corruption(image, severity, seed), 0, 255))
        else:
            with torch.inference_mode():
                get_torch_corruption(name)(batch[:count], severity, torch.tensor(seeds, dtype=torch.int64))

    for name in BENCHMARK_CORRUPTIONS:  # warm-up: first calls apart (numba, caches; 8 images fill a thread pool)
        render(name, min(images, 8))
    barrier.wait()
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for name in BENCHMARK_CORRUPTIONS:
            render(name)
        seconds.append(time.perf_counter() - start)
        barrier.wait()  # the processes stay in step, round by round
    return seconds


def measure(backend: str, processes: int, images: int, rounds: int, threads: int = 1) -> float:
    """Milliseconds per image for the 15 corruptions on ``processes`` concurrent workers (median round), each
    rendering ``images`` images (torch on ``threads`` threads)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            per_process = pool.map(_render, [(backend, images, rounds, barrier, threads)] * processes)
    slowest = [max(times) for times in zip(*per_process, strict=True)]
    return 1000 * statistics.median(slowest) / (processes * images)


def _median_and_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", default="1,2", help="comma-separated worker counts")
    p.add_argument("--images", type=int, default=64, help="images per worker")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per measurement (median)")
    p.add_argument("--threads", default="", help="comma-separated thread counts for torch in one process, each "
                   "against the reference on as many worker processes")
    p.add_argument("--out", default=None, help="markdown file for the table")
    p.add_argument("--repeats", type=int, default=1, help="times the whole set of measurements runs, interleaved; "
                   "speed-ups are medians of the ratios within a repeat")
    args = p.parse_args(argv)
    counts = [int(n) for n in args.processes.split(",")]
    thread_counts = [int(n) for n in args.threads.split(",") if n.strip()]
    # (backend, processes, torch threads); each torch case measured right after its reference case
    cases: list[tuple[str, int, int]] = []
    for count in counts:
        cases += [("reference", count, 1), ("torch", count, 1)]
    for threads in thread_counts:
        if ("reference", threads, 1) not in cases:
            cases.append(("reference", threads, 1))
        cases.append(("torch", 1, threads))
    ms: dict[tuple[str, int, int], list[float]] = {case: [] for case in cases}
    for repeat in range(args.repeats):  # the whole set per repeat: a slow spell of the machine hits every case
        for backend, processes, threads in cases:
            images = args.images * threads  # torch on T threads in one process renders T workers' images
            value = measure(backend, processes, images, args.rounds, threads=threads)
            ms[backend, processes, threads].append(value)
            print(f"repeat {repeat + 1}: {backend} on {processes} process(es), {threads} thread(s): {value:.2f} ms "
                  "per image", flush=True)

    def ratios(reference: tuple, torch_case: tuple) -> list[float]:  # paired within each repeat
        return [r / t for r, t in zip(ms[reference], ms[torch_case], strict=True)]

    median = {case: statistics.median(values) for case, values in ms.items()}
    import torch

    command = "python benchmarks/bench_corruption_workers.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [f"# Corruption throughput on worker processes (CPU, torch {torch.__version__})", "",
             f"Command: `{command}`", "",
             "The 15 ImageNet-C benchmark corruptions at severity 3, each worker single-threaded on its own batch of "
             f"{args.images} images of 224 x 224, all workers started together; time per image = the slowest "
             f"worker's time / (workers x images), median of {args.rounds} rounds after a warm-up call per "
             f"corruption (see the script's docstring); {args.repeats} repeat(s) of all cases, interleaved. Times are "
             "medians over the repeats; a speed-up is the median (and range) of the ratios within a repeat.", "",
             "| workers | reference ms per image | torch ms per image | torch speed-up | reference scaling | "
             "torch scaling |", "|---|---|---|---|---|---|"]
    for count in counts:
        ref, tor = ("reference", count, 1), ("torch", count, 1)
        first = [median[backend, counts[0], 1] / median[backend, count, 1] for backend in BACKENDS]
        lines.append(f"| {count} | {median[ref]:.2f} | {median[tor]:.2f} | {_median_and_range(ratios(ref, tor))} | "
                     f"{first[0]:.2f}x | {first[1]:.2f}x |")
    if thread_counts:
        lines += ["", "Torch in one process on T threads (one batch of T x "
                  f"{args.images} images per corruption, on `corrupt_batch`'s thread pool) against the reference on T "
                  "worker processes of the same repeat:", "",
                  "| threads | reference ms per image (T workers) | torch ms per image (1 process) | torch speed-up |",
                  "|---|---|---|---|"]
        for threads in thread_counts:
            ref, tor = ("reference", threads, 1), ("torch", 1, threads)
            lines.append(f"| {threads} | {median[ref]:.2f} | {median[tor]:.2f} | "
                         f"{_median_and_range(ratios(ref, tor))} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
