"""Pipeline efficiency per corruption backend: ``run_suite``'s steady-state images/s against the forward pass of
the same enhancer + model on preloaded tensors, with the start-up cost reported apart, and a full-grid projection.

The old end-to-end benchmark timed one short run (96 images) including model loading, worker start-up and first
calls (numba compiling glass_blur in every worker), which is what made the H100 figure 14.7 images/s. Here the
suite is timed on 1 cell and on K cells of the same size in fresh output folders; the steady-state rate is
``(K - 1) x images / (t_K - t_1)`` and the start-up cost ``t_1 - images / rate``.

Usage (a plain script, not part of the tests)::

    python benchmarks/bench_pipeline.py --device cpu --images 64 --cells 4 --out benchmarks/results/pipeline_cpu.md
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
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


def suite_seconds(enhancer: str, model: str, backend: str, n_cells: int, args: argparse.Namespace) -> float:
    corruptions = ",".join(CELL_CORRUPTIONS[i % len(CELL_CORRUPTIONS)] for i in range(n_cells))
    with tempfile.TemporaryDirectory() as out:
        config = SuiteConfig(enhancers=[enhancer], models=[model], data_root=demo_data_root(),
                             corruptions=corruptions, severities=[3], limit=args.images, batch_size=args.batch_size,
                             workers=args.workers, device=args.device, out=out, progress=False,
                             corruption_backend=backend, allow_untrained=True, records=False)
        start = time.perf_counter()
        run_suite(config)
        return time.perf_counter() - start


def forward_rate(enhancer_name: str, model_name: str, args: argparse.Namespace) -> float:
    from robustbench_sympie.enhancers import create_enhancer

    device = torch.device(args.device)
    model = create_model(model_name).to(device)
    kwargs = {"downstream_model": model_name} if enhancer_name == "sympie" else {}
    enhancer = create_enhancer(enhancer_name, **kwargs).to(device).eval()
    images = torch.rand(args.batch_size, 3, 224, 224, device=device)
    times = []
    with torch.inference_mode():
        for i in range(4):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(enhancer(images))
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first call is the warm-up
                times.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--images", type=int, default=64, help="images per cell")
    p.add_argument("--cells", type=int, default=4, help="K: cells of the long run (the short run has 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backends", default="reference,torch")
    p.add_argument("--out", default=None, help="markdown file for the table")
    args = p.parse_args(argv)
    rows = []
    for enhancer, model in CASES:
        ceiling = forward_rate(enhancer, model, args)
        for backend in args.backends.split(","):
            t1 = suite_seconds(enhancer, model, backend, 1, args)
            tk = suite_seconds(enhancer, model, backend, args.cells, args)
            rate = (args.cells - 1) * args.images / (tk - t1)
            startup = t1 - args.images / rate
            projection_h = FULL_GRID_EVALUATIONS / rate / 3600
            rows.append((f"{enhancer} + {model}", backend, rate, ceiling, rate / ceiling, startup, projection_h))
            print(rows[-1], flush=True)
    threads = f"CPU ({torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else threads
    command = "python benchmarks/bench_pipeline.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [f"# Pipeline efficiency ({device}, torch {torch.__version__})", "",
             f"Command: `{command}`", "",
             f"Steady state from runs of 1 and {args.cells} cells of {args.images} images (severity 3, corruptions "
             f"cycled from {', '.join(CELL_CORRUPTIONS)}), batch {args.batch_size}, {args.workers} workers. "
             "Efficiency = suite images/s / forward-only images/s of the same enhancer + model on preloaded tensors. "
             "Projection = the full ImageNet-C grid (50,000 x 15 x 5 = 3.75 M evaluations) at the measured rate.",
             "", "| enhancer + model | backend | suite images/s | forward images/s | efficiency | start-up s | "
             "full grid (h) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c} | {b} | {r:.1f} | {f:.1f} | {e:.2f} | {s:.1f} | {h:.1f} |" for c, b, r, f, e, s, h in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
