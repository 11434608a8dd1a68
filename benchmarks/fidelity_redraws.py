"""Fidelity of random corruptions over several draws: the cells of ``corruption_fidelity.py`` with run seeds 0..S-1.

A random corruption's torch version draws other numbers than numpy, so one cell's top-1 difference mixes the two
backends' bias with the luck of one draw. Re-drawing both backends with other run seeds
(``sample_seed(image_id, corruption, severity, seed)``) on the same images separates the two. Per cell:

* per seed: efficientnet_lite0 top-1 of both backends and their difference (seed 0 reproduces the cell of
  ``leaderboards/corruption_fidelity.md``);
* pooled: the difference averaged over the seeds, with a 95 % percentile bootstrap over images of each image's
  mean difference and a two-sided sign test on those means (with one seed, McNemar's exact test);
* redraws: the reference against itself, top-1(reference, seed s) - top-1(reference, seed 0) for s >= 1, how far
  a cell moves when only the draw changes.

Each (cell, seed) is kept in ``--cache`` (one ``.npz`` per cell and seed, written atomically) as it finishes, so an
interrupted run resumes where it stopped. Usage (from the repository root)::

    python benchmarks/fidelity_redraws.py --corruptions snow,frost --seeds 0,1,2 \
        --out leaderboards/corruption_fidelity_redraws.md --cache /tmp/redraws
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import corruption_fidelity as fidelity  # this script's folder is on sys.path when it runs
import numpy as np


@dataclass
class RedrawCell:
    """One corruption x severity over the seeds: per-image top-1 flags, ``images x seeds`` for each backend."""

    corruption: str
    severity: int
    seeds: list[int]
    correct_reference: np.ndarray
    correct_torch: np.ndarray

    def top1(self, correct: np.ndarray) -> list[float]:
        return [100.0 * float(v) for v in correct.mean(axis=0)]

    def pooled(self) -> tuple[float, float, float, float]:
        """Torch - reference in points averaged over seeds, its 95 % bootstrap interval over images, sign-test p."""
        from scipy.stats import binomtest

        per_image = (self.correct_torch.astype(np.float64) - self.correct_reference.astype(np.float64)).mean(axis=1)
        n = len(per_image)
        gen = np.random.default_rng(fidelity.BOOTSTRAP_SEED)
        boots = 100.0 * per_image[gen.integers(0, n, size=(fidelity.BOOTSTRAP_RESAMPLES, n))].mean(axis=1)
        low, high = np.percentile(boots, [2.5, 97.5])
        up, down = int(np.sum(per_image > 0)), int(np.sum(per_image < 0))
        p = binomtest(up, up + down, 0.5).pvalue if up + down else 1.0
        return 100.0 * float(per_image.mean()), float(low), float(high), float(p)

    def redraws(self) -> list[float]:
        """Top-1 of the reference with each later seed minus with the first, in points."""
        first = self.correct_reference[:, 0].mean()
        return [100.0 * float(self.correct_reference[:, s].mean() - first) for s in range(1, len(self.seeds))]


def _cache_file(cache: Path, name: str, severity: int, seed: int, n_images: int) -> Path:
    return cache / f"{name}-s{severity}-seed{seed}-n{n_images}.npz"


def _load_cached(path: Path, image_ids: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached flags of one (cell, seed), if ``path`` holds them for exactly these images."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        if list(data["image_ids"]) != image_ids:
            return None
        return data["reference"], data["torch"]


def _save_cached(path: Path, image_ids: list[str], reference: np.ndarray, torch_: np.ndarray) -> None:
    from robustbench_sympie.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, image_ids=np.array(image_ids), reference=reference, torch=torch_)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    fidelity.add_common_arguments(parser)
    parser.add_argument("--corruptions", required=True, help="comma-separated corruptions or groups")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds (at least two)")
    parser.add_argument("--out", required=True, help="markdown file for the table")
    parser.add_argument("--cache", default=None, help="folder for each finished (cell, seed); a rerun resumes")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds needs at least two different seeds, got {args.seeds}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from robustbench_sympie.corruptions import sample_seed

    inputs = fidelity.load_inputs(args)
    lacking = [n for n in inputs.names if n not in inputs.torch_corruptions]
    if lacking:
        raise SystemExit(f"no torch version registered for {', '.join(lacking)}")
    device, names, severities = inputs.device, inputs.names, inputs.severities
    records, clean, labels, model = inputs.records, inputs.clean, inputs.labels, inputs.model
    torch_corruptions = inputs.torch_corruptions
    image_ids = [r.image_id for r in records]
    cache = Path(args.cache) if args.cache else None
    print(f"{len(records)} images from {args.data_root}; device {device}; seeds {args.seeds}", flush=True)

    cells: list[RedrawCell] = []
    with mp.get_context("spawn").Pool(args.workers, initializer=fidelity._init_worker, initargs=(clean,)) as pool:
        for name in names:
            for severity in severities:
                flags = []
                for seed in args.seeds:
                    path = _cache_file(cache, name, severity, seed, len(records)) if cache else None
                    cached = _load_cached(path, image_ids) if path else None
                    if cached is None:
                        seeds = [sample_seed(i, name, severity, seed) for i in image_ids]
                        ref, _ = fidelity.render_reference(pool, args.workers, name, severity, seeds)
                        tor, _ = fidelity.render_torch(torch_corruptions[name], clean, severity, seeds, device,
                                                       args.batch_size)
                        cached = (fidelity.top1_flags(model, ref, labels, device, args.batch_size),
                                  fidelity.top1_flags(model, tor, labels, device, args.batch_size))
                        if path:
                            _save_cached(path, image_ids, *cached)
                    flags.append(cached)
                    print(f"{name} s{severity} seed {seed}: top-1 ref {100 * cached[0].mean():.1f} torch "
                          f"{100 * cached[1].mean():.1f}", flush=True)
                cells.append(RedrawCell(name, severity, list(args.seeds), np.stack([f[0] for f in flags], axis=1),
                                        np.stack([f[1] for f in flags], axis=1)))

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/fidelity_redraws.py",
                                                               *(sys.argv[1:] if argv is None else argv)])
    text = markdown(cells, command, f"torch {torch.__version__}, device {device}", len(records))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from robustbench_sympie.atomic import write_atomic

    write_atomic(out, text)
    print(f"wrote {out}")
    return 0


def markdown(cells: list[RedrawCell], command: str, platform: str, n_images: int) -> str:
    """The table of ``cells``: per-seed top-1s and differences, the pooled difference, the reference's redraws."""
    seeds = cells[0].seeds if cells else []

    def points(values: list[float], signed: bool = False) -> str:
        return ", ".join(f"{v:+.2f}" if signed else f"{v:.1f}" for v in values)

    lines = [
        "# Random corruptions over several draws: torch backend vs reference",
        "",
        f"Produced by `{command}`",
        f"on {platform}, {n_images} images (`Preprocess(256, 224)`), efficientnet_lite0, run seeds "
        f"{', '.join(map(str, seeds))} (`sample_seed(image_id, corruption, severity, seed)`).",
        "",
        "Per seed: top-1 of each backend and diff = torch - reference in points (seed 0 is the cell of "
        "[`corruption_fidelity.md`](corruption_fidelity.md)). Pooled: the diff averaged over the seeds, paired over "
        f"images; 95 % percentile bootstrap of each image's mean diff ({fidelity.BOOTSTRAP_RESAMPLES} resamples, "
        f"seed {fidelity.BOOTSTRAP_SEED}); sign test: exact binomial test on the images whose mean diff is not 0. "
        "Reference redraws: top-1(reference, seed s) - top-1(reference, seed "
        f"{seeds[0] if seeds else 0}) for the later seeds: the move of a cell when only the draw changes.",
        "",
        "| corruption | severity | top-1 ref per seed | top-1 torch per seed | diff per seed (pts) | pooled diff (pts) "
        "| 95 % interval | sign-test p | pooled within ±2 | reference redraws (pts) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        ref, tor = c.top1(c.correct_reference), c.top1(c.correct_torch)
        diff, low, high, p = c.pooled()
        lines.append(
            f"| {c.corruption} | {c.severity} | {points(ref)} | {points(tor)} | "
            f"{points([t - r for t, r in zip(tor, ref, strict=True)], signed=True)} | {diff:+.2f} | "
            f"[{low:+.2f}, {high:+.2f}] | {p:.3g} | {'yes' if abs(diff) <= fidelity.DIFF_TARGET_POINTS else '**no**'} "
            f"| {points(c.redraws(), signed=True)} |")
    if cells:
        pooled = [c.pooled()[0] for c in cells]
        single = [t - r for c in cells
                  for t, r in zip(c.top1(c.correct_torch), c.top1(c.correct_reference), strict=True)]
        redraws = [r for c in cells for r in c.redraws()]
        cells_text = f"{len(cells)} cell" + ("s" if len(cells) != 1 else "")
        lines += ["", f"**Summary**: over {cells_text} the pooled diff averages {np.mean(pooled):+.2f} points; "
                      f"{sum(abs(d) <= fidelity.DIFF_TARGET_POINTS for d in pooled)}/{len(cells)} pooled diffs are "
                      f"within ±{fidelity.DIFF_TARGET_POINTS:g} points, against "
                      f"{sum(abs(d) <= fidelity.DIFF_TARGET_POINTS for d in single)}/{len(single)} single-seed diffs. "
                      f"Single-seed diffs spread with a standard deviation of {np.std(single, ddof=1):.2f} points; "
                      f"the reference's own redraws span {min(redraws):+.2f} to {max(redraws):+.2f} points "
                      f"(standard deviation {np.std(redraws, ddof=1) if len(redraws) > 1 else 0.0:.2f})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
