"""Pipeline efficiency per corruption backend: ``run_suite``'s steady-state images/s against the forward pass of
the same enhancer + model on preloaded tensors, with the start-up cost reported apart, and a full-grid projection.

The old end-to-end benchmark timed one short run (96 images) including model loading, worker start-up and first
calls (numba compiling glass_blur in every worker), which is what made the H100 figure 14.7 images/s. Here the
suite is timed in fresh output folders on 1 and on K cells of N images and of N/2 images, and the time is
split into start-up ``s``, a fixed cost per cell ``o`` (results written atomically, counters read back, progress
bars), a cost per evaluated image ``c`` and a cost ``d`` paid once per image of the run, whatever the number of
cells: decoding the clean images, when later cells replay them (the torch backend, see
``robustbench_sympie/clean_cache.py``; about 0 otherwise). With ``t(k, n) = s + k o + k n c + n d`` and
``h = N - N // 2``::

    c = ((t(K, N) - t(1, N)) - (t(K, N/2) - t(1, N/2))) / ((K - 1) h)      o = (t(K, N) - t(1, N)) / (K - 1) - N c
    d = (t(1, N) - t(1, N/2)) / h - c                                       s = t(1, N) - o - N (c + d)

The steady-state rate is ``1 / c``: what a grid of many large cells runs at (ImageNet-C: 76 cells of 50,000
images), since ``o`` is paid once per cell and ``d`` once per image for all 76 cells; the table also gives the
rate at the benchmark's own cell size, ``(K - 1) N / (t(K, N) - t(1, N))``, which ``o`` lowers when cells are
small. Efficiency = ``(1 / c)`` / the forward-only rate of the same enhancer + model on preloaded tensors. The
projection is ``s + 76 o + 3.75 M c + 50,000 d``.

Usage (a plain script, not part of the tests)::

    python benchmarks/bench_pipeline.py --device cpu --images 64 --cells 4 --out benchmarks/results/pipeline_cpu.md
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.models import Classifier, create_model, register_model
from robustbench_sympie.runner import SuiteConfig, run_suite

#: corruptions cycled through for the K cells (cheap and expensive ones, so the mean is not flattered)
CELL_CORRUPTIONS = ("gaussian_noise", "motion_blur", "fog", "contrast", "elastic_transform", "jpeg_compression",
                    "shot_noise", "zoom_blur")
FULL_GRID_EVALUATIONS = 50_000 * 15 * 5  # ImageNet-C validation: images x corruptions x severities


@register_model("resnet50_random", overwrite=True)
def resnet50_random(weights=None) -> Classifier:
    """torchvision's resnet50 architecture with random weights: the published weights need a download, and
    speed does not depend on the weights."""
    import torchvision

    return Classifier(torchvision.models.resnet50(weights=None), name="resnet50_random", weights="random")


CASES = (("identity", "efficientnet_lite0"), ("identity", "resnet50_random"), ("sympie", "resnet50_random"))
FULL_GRID_IMAGES = 50_000
GRID_CELLS = 76  # 15 corruptions x 5 severities + clean
#: a suite run still going after this long dumps every thread's stack (and again every as long), to show a hang
HANG_SECONDS = 300


def suite_seconds(enhancer: str, model: str, backend: str, n_cells: int, args: argparse.Namespace,
                  decode: str = "auto", precision: str = "fp32", channels_last: bool = False,
                  images: int | None = None) -> float:
    corruptions = ",".join(CELL_CORRUPTIONS[i % len(CELL_CORRUPTIONS)] for i in range(n_cells))
    with tempfile.TemporaryDirectory() as out:
        config = SuiteConfig(enhancers=[enhancer], models=[model], data_root=args.data_root,
                             corruptions=corruptions, severities=[3], limit=images or args.images,
                             batch_size=args.batch_size,
                             workers=args.workers, device=args.device, out=out, progress=False,
                             corruption_backend=backend, allow_untrained=True, records=False, decode=decode,
                             precision=precision, channels_last=channels_last)
        faulthandler.dump_traceback_later(HANG_SECONDS, repeat=True)  # a run that hangs shows where it is
        start = time.perf_counter()
        try:
            run_suite(config)
        finally:
            faulthandler.cancel_dump_traceback_later()
        seconds = time.perf_counter() - start
    print(f"  {n_cells} cell(s) x {images or args.images} images: {seconds:.2f} s", flush=True)
    return seconds


def forward_rate(enhancer_name: str, model_name: str, args: argparse.Namespace, precision: str = "fp32",
                 channels_last: bool = False) -> float:
    """Forward-only images/s of enhancer + model on a preloaded batch, with the suite's precision and format."""
    from robustbench_sympie.enhancers import create_enhancer
    from robustbench_sympie.runner import ComputeSettings

    device = torch.device(args.device)
    model = create_model(model_name).to(device)
    kwargs = {"downstream_model": model_name} if enhancer_name == "sympie" else {}
    enhancer = create_enhancer(enhancer_name, **kwargs).to(device).eval()
    if channels_last:
        model, enhancer = model.to(memory_format=torch.channels_last), enhancer.to(memory_format=torch.channels_last)
    compute = ComputeSettings(precision=precision, channels_last=channels_last)
    images = compute.prepare(torch.randint(0, 256, (args.batch_size, 3, 224, 224), dtype=torch.uint8,
                                           device=device), [])
    times = []
    with torch.inference_mode(), compute.autocast(device):
        for i in range(6):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(enhancer(images)).float()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i > 1:  # the first calls are the warm-up
                times.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(times)


@dataclass(frozen=True)
class Repeat:
    """One measurement of a row: the forward-only rate and the suite's times t(1, N), t(K, N), t(K, N/2) and
    (rows that replay decoded images) t(1, N/2)."""

    forward: float
    t1: float
    tk: float
    tk_half: float
    t1_half: float | None = None

    def efficiency(self, cells: int, images: int) -> float:
        return 1 / decompose(self, cells, images).per_image / self.forward


@dataclass(frozen=True)
class Costs:
    """The suite's time split as in the module docstring (seconds)."""

    per_image: float  # c: per evaluated image
    per_cell: float  # o
    once_per_image: float  # d: per image of the run, whatever the number of cells (decoding replayed images)
    startup: float  # s

    def projection(self) -> float:
        """Seconds for the full ImageNet-C grid."""
        return (self.startup + GRID_CELLS * self.per_cell + FULL_GRID_EVALUATIONS * self.per_image
                + FULL_GRID_IMAGES * self.once_per_image)


def decompose(times: Repeat, cells: int, images: int) -> Costs:
    """The costs from t(1, N), t(K, N), t(K, N/2) and, when measured, t(1, N/2) (else ``d`` = 0: a row whose cells
    all load their own images, where the three runs give ``c = (t(K, N) - t(K, N/2)) / (K h)``)."""
    half = images - images // 2
    long = times.tk - times.t1
    if times.t1_half is None:
        per_image, once = (times.tk - times.tk_half) / (cells * half), 0.0
    else:
        per_image = (long - (times.tk_half - times.t1_half)) / ((cells - 1) * half)
        once = (times.t1 - times.t1_half) / half - per_image
    per_cell = long / (cells - 1) - images * per_image
    return Costs(per_image, per_cell, once, times.t1 - per_cell - images * (per_image + once))


def variants(args: argparse.Namespace) -> list[tuple[str, str, str, str, bool]]:
    """(enhancer, model, backend, decode, precision, channels_last) rows to measure."""
    rows = []
    for enhancer, model in CASES:
        if args.cases and f"{enhancer}+{model}" not in args.cases.split(","):
            continue
        for backend in args.backends.split(","):
            for decode in (args.decodes.split(",") if backend == "torch" else ["workers"]):
                rows.append((enhancer, model, backend, decode, "fp32", False))
        if args.fast:
            rows.append((enhancer, model, "torch", args.decodes.split(",")[0], "bf16", True))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--images", type=int, default=64, help="images per cell")
    p.add_argument("--cells", type=int, default=4, help="K: cells of the long run (the short run has 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backends", default="reference,torch")
    p.add_argument("--decodes", default="workers",
                   help="decode settings measured for the torch backend (e.g. 'device,workers' on CUDA)")
    p.add_argument("--fast", action="store_true", help="also measure each case with bf16 autocast + channels-last")
    p.add_argument("--cases", default="", help="comma-separated ENHANCER+MODEL cases (default: all)")
    p.add_argument("--data-root", default=str(demo_data_root()), help="folder of clean JPEG images")
    p.add_argument("--repeats", type=int, default=1,
                   help="measure each row this many times, the forward pass and the suite runs interleaved; the "
                        "table gives the medians and the range of the per-repeat efficiencies (use 3+ on a "
                        "shared CPU, whose speed drifts between runs)")
    p.add_argument("--out", default=None, help="markdown file for the table")
    args = p.parse_args(argv)
    rows = []
    for enhancer, model, backend, decode, precision, channels_last in variants(args):
        settings = precision + (" + channels-last" if channels_last else "")
        label = f"{enhancer} + {model}, {backend}, decode {decode}, {settings}"
        started = time.perf_counter()
        run = functools.partial(suite_seconds, enhancer, model, backend, args=args, decode=decode,
                                precision=precision, channels_last=channels_last)
        repeats: list[Repeat] = []
        try:
            for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits both sides alike
                ceiling = forward_rate(enhancer, model, args, precision, channels_last)
                times = [run(1), run(args.cells), run(args.cells, images=args.images // 2)]
                if backend == "torch":  # its cells replay the first cell's decoded images: d is measured
                    times.append(run(1, images=args.images // 2))
                repeats.append(Repeat(ceiling, *times))
        except Exception:  # noqa: BLE001 - one failing variant must not cost the others' measurements
            traceback.print_exc()
            print(f"FAILED: {label}", flush=True)
            continue
        median = Repeat(*(None if getattr(repeats[0], f.name) is None else
                          statistics.median(getattr(r, f.name) for r in repeats) for f in fields(Repeat)))
        costs = decompose(median, args.cells, args.images)
        spread = [r.efficiency(args.cells, args.images) for r in repeats]
        cell_rate = (args.cells - 1) * args.images / (median.tk - median.t1)
        rows.append((f"{enhancer} + {model}", backend, decode, settings, 1 / costs.per_image, cell_rate,
                     median.forward, 1 / costs.per_image / median.forward, min(spread), max(spread), costs.per_cell,
                     1000 * costs.once_per_image, costs.startup, costs.projection() / 60))
        print(f"{label}: t(1,N)={median.t1:.2f} s t(K,N)={median.tk:.2f} s t(K,N/2)={median.tk_half:.2f} s "
              f"t(1,N/2)={median.t1_half or float('nan'):.2f} s -> {1 / costs.per_image:.0f} images/s, "
              f"{costs.per_cell:.3f} s per cell, {1000 * costs.once_per_image:.1f} ms once per image, start-up "
              f"{costs.startup:.2f} s; forward {median.forward:.0f} images/s; efficiency per repeat "
              f"{', '.join(f'{e:.2f}' for e in spread)} "
              f"({time.perf_counter() - started:.1f} s for this row)", flush=True)
    threads = f"CPU ({torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else threads
    command = "python benchmarks/bench_pipeline.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [f"# Pipeline efficiency ({device}, torch {torch.__version__})", "",
             f"Command: `{command}`", "",
             f"Runs of 1 and {args.cells} cells of N = {args.images} images and of N/2 "
             f"(severity 3, corruptions cycled from {', '.join(CELL_CORRUPTIONS)}), batch {args.batch_size}, "
             f"{args.workers} workers, images from `{args.data_root}`, split into start-up, a cost per cell, a "
             "cost per evaluated image and a cost once per image of the run (decoding, when later cells replay the "
             "decoded clean images; see the script's docstring). Steady images/s = 1 / cost per evaluated image "
             "(a grid of many large cells); at N = images/s with cells of N images. Efficiency = steady images/s / "
             "forward-only images/s of the same enhancer + model (same precision and memory format) on preloaded "
             f"tensors. Projection = the full ImageNet-C grid ({GRID_CELLS} cells, 50,000 x 15 x 5 = 3.75 M "
             f"evaluations): start-up + {GRID_CELLS} x cost per cell + 3.75 M x cost per evaluated image + 50,000 x "
             f"cost once per image (measured for the torch backend, whose later cells replay the first cell's "
             "decoded images; 0 for the reference backend, whose cells load their own). Each row measured "
             f"{args.repeats} time(s), the forward pass and the suite runs interleaved: times and rates are medians "
             "over the repeats, and the range is that of the efficiencies computed within each repeat.",
             "", "| enhancer + model | backend | decode | settings | steady images/s | images/s at N | forward "
             "images/s | efficiency | range over repeats | s per cell | ms once per image | start-up s | "
             "full grid (min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c} | {b} | {d} | {st} | {r:.0f} | {rn:.0f} | {f:.0f} | {e:.2f} | {lo:.2f}-{hi:.2f} | {o:.3f} "
              f"| {once:.1f} | {s:.1f} | {m:.1f} |" for c, b, d, st, r, rn, f, e, lo, hi, o, once, s, m in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
