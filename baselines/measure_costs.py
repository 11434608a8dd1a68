"""Measure the cost of every baseline and write ``baselines/COSTS.md``.

FLOPs (``FlopCounterMode`` on the meta device, 2 FLOPs per multiply-add) for the torch enhancers and measured CPU
seconds per image for all of them, at 224x224 and 1920x1080 (a noisy demo image, batch of 1)::

    python -m baselines.measure_costs [--out baselines/COSTS.md] [--resolutions 224x224,1920x1080]
"""

from __future__ import annotations

import argparse
import math
import platform
from pathlib import Path
from typing import Any

import torch

from robustbench_sympie.enhancers import ENHANCERS

HEADER = ["enhancer", "resolution", "GFLOPs", "GMACs", "CPU s/image", "note"]


def baseline_names() -> list[str]:
    """Registered enhancers that come from this package's entry points."""
    return [n for n in ENHANCERS.names() if ENHANCERS.source(n).startswith("entry point baselines.")]


def cost_rows(name: str, resolutions: list[str]) -> list[dict[str, Any]]:
    """The cost rows of one baseline, or NaN rows saying why it could not be measured."""
    factory = ENHANCERS.get(name)
    try:
        return factory.cost(resolutions, time_it=True)
    except ImportError as exc:
        return [{"name": name, "resolution": r, "gflops": math.nan, "gmacs": math.nan,
                 "seconds_per_image": math.nan, "note": f"not measured: {exc}"} for r in resolutions]


def _fmt(value: float, digits: str) -> str:
    return "n/a" if math.isnan(value) else format(value, digits)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The cost table as Markdown, with the machine it was measured on."""
    lines = ["# Baseline costs", "",
             "Produced by `python -m baselines.measure_costs`. GFLOPs: `torch.utils.flop_counter.FlopCounterMode` "
             "(convolutions and matrix products only, 2 FLOPs per multiply-add, GMACs = GFLOPs / 2); `n/a` where "
             "the enhancer is a per-image OpenCV/scikit-image call. CPU s/image: median wall-clock time on one "
             f"noisy demo image, batch 1, torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"{platform.processor() or platform.machine()} (a shared machine: times are indicative).", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        cells = [r["name"], r["resolution"], _fmt(r["gflops"], ".4f"), _fmt(r["gmacs"], ".4f"),
                 _fmt(r["seconds_per_image"], ".4f"), r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("COSTS.md")))
    parser.add_argument("--resolutions", default="224x224,1920x1080")
    args = parser.parse_args(argv)
    resolutions = args.resolutions.split(",")
    rows = [row for name in baseline_names() for row in cost_rows(name, resolutions)]
    Path(args.out).write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
