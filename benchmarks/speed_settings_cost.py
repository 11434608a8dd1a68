"""Accuracy cost of the opt-in speed settings: ``--precision bf16|fp16``, ``--channels-last``, ``--compile``.

Runs the same grid (same images, cells, seeds, corruption backend and decoding) once per setting and compares each
setting with the exact fp32 run image by image: top-1 difference in points with a 95 % cluster-bootstrap interval
over images and the exact McNemar p-value (``robustbench_sympie.stats.paired_deltas``), the number of cells whose
top-1 moved, the largest per-cell change and the run's wall time. Usage (from the repository root)::

    python benchmarks/speed_settings_cost.py --device cuda --limit 200 --out leaderboards/speed_settings_cost.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pandas as pd
import torch

from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.records import load_records
from robustbench_sympie.runner import SuiteConfig, run_suite
from robustbench_sympie.stats import paired_deltas

BASELINE = "fp32"
SETTINGS: dict[str, dict] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
    "channels-last": {"channels_last": True},
    "bf16 + channels-last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(demo_data_root()))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--enhancer", default="identity")
    p.add_argument("--corruptions", default="clean,benchmark")
    p.add_argument("--severities", default="1,2,3,4,5")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--corruption-backend", default="auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}")
    p.add_argument("--out", default=None, help="markdown file")
    p.add_argument("--csv", default=None, help="per-setting rows as CSV")
    return p.parse_args(argv)


def run_setting(name: str, args: argparse.Namespace, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(results, per-image records labelled with the setting, wall seconds) of one setting."""
    config = SuiteConfig(enhancers=[args.enhancer], models=[args.model], data_root=args.data_root,
                         corruptions=args.corruptions, severities=[int(s) for s in args.severities.split(",")],
                         limit=args.limit, batch_size=args.batch_size, workers=args.workers, device=args.device,
                         out=out / name.replace(" ", ""), progress=False, corruption_backend=args.corruption_backend,
                         allow_untrained=True, **SETTINGS[name])
    start = time.perf_counter()
    results = run_suite(config)
    seconds = time.perf_counter() - start
    records = load_records(config.out).assign(enhancer=name)
    return results.assign(setting=name), records, seconds


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown or BASELINE not in names:
        raise SystemExit(f"--settings: unknown {unknown} (known: {', '.join(SETTINGS)}); {BASELINE} is required")
    results, records, seconds = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in list(names):
            try:
                frame, recs, seconds[name] = run_setting(name, args, Path(tmp))
            except Exception:  # noqa: BLE001 - a setting this machine cannot run is reported, the others kept
                if name == BASELINE:
                    raise
                traceback.print_exc()
                print(f"FAILED: setting {name}", flush=True)
                names.remove(name)
                continue
            results.append(frame)
            records.append(recs)
            print(f"{name}: {seconds[name]:.1f} s, top-1 {100 * frame['top1'].mean():.2f} %", flush=True)
    records_all = pd.concat(records, ignore_index=True)
    overall = paired_deltas(records_all, baseline=BASELINE)
    cells = pd.concat(results, ignore_index=True)
    top1 = cells.pivot_table(index=["corruption", "severity"], columns="setting", values="top1")
    rows = []
    for name in names:
        if name == BASELINE:
            continue
        delta = overall[overall["enhancer"] == name].iloc[0]
        moved = (top1[name] - top1[BASELINE]).abs() * 100
        rows.append({"setting": name, "top1_pct": delta["top1_pct"], "delta_pts": delta["delta_top1_pts"],
                     "ci_low_pts": delta["ci_low_pts"], "ci_high_pts": delta["ci_high_pts"],
                     "wins": delta["wins"], "losses": delta["losses"], "p_mcnemar": delta["p_mcnemar"],
                     "cells_moved": int((moved > 0).sum()), "max_cell_change_pts": float(moved.max()),
                     "seconds": seconds[name]})
    table = pd.DataFrame(rows)
    device = (torch.cuda.get_device_name() if args.device.startswith("cuda")
              else f"CPU ({torch.get_num_threads()} threads)")
    command = "python benchmarks/speed_settings_cost.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    backend = cells["corruption_backend"].iloc[0]
    n_images, n_cells = int(cells["n"].max()), len(top1)
    lines = [f"# Accuracy cost of the speed settings ({device}, torch {torch.__version__})", "",
             f"Command: `{command}`", "",
             f"{args.enhancer} + {args.model}, {n_cells} cells ({args.corruptions}, severities {args.severities}) "
             f"on {n_images} images, corruption backend {backend}, decode {cells['decode'].iloc[0]}. Each setting "
             f"against the exact {BASELINE} run on the same pixels, image by image: difference in top-1 points over "
             "all cells with a 95 % cluster-bootstrap interval over images, predictions that became right (wins) "
             "or wrong (losses), exact McNemar p, cells whose top-1 moved at all and the largest change of one "
             f"cell. The {BASELINE} run: top-1 {100 * cells[cells['setting'] == BASELINE]['top1'].mean():.2f} % "
             f"(mean over cells), {seconds[BASELINE]:.1f} s.", "",
             "| setting | top-1 % | difference (pts) | 95 % CI | wins / losses | McNemar p | cells moved | "
             "largest cell change (pts) | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['top1_pct']:.2f} | {r['delta_pts']:+.3f} | "
                     f"[{r['ci_low_pts']:+.2f}, {r['ci_high_pts']:+.2f}] | {r['wins']} / {r['losses']} | "
                     f"{r['p_mcnemar']:.2g} | {r['cells_moved']} / {n_cells} | {r['max_cell_change_pts']:.2f} | "
                     f"{r['seconds']:.1f} |")
    lines += ["", "Wall times include model loading and, for compile, compilation; the speed of each setting is "
              "measured in `benchmarks/bench_pipeline.py --fast`."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
