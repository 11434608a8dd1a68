"""Fidelity of the batched torch corruptions to the numpy reference, cell by cell (corruption x severity).

For each cell, on the same clean images (``Preprocess(256, 224)``) and with the same per-sample seeds
(``sample_seed(image_id, corruption, severity, 0)``), renders the reference (``get_corruption``, in a pool of
two processes) and the torch version (``corrupt_batch``, batched on ``--device``), and reports:

* mean PSNR vs the clean image of both backends;
* mean absolute pixel difference between the backends (meaningful only for deterministic corruptions, whose
  output does not depend on the seed: random ones draw different numbers in numpy and torch);
* efficientnet_lite0 top-1 on both, the paired difference torch - reference in points with a 95 % bootstrap
  interval over images (fixed seed) and the exact McNemar p-value on the discordant pairs;
* whether the cell meets the target (|difference| <= 2 points) and the mean over cells vs the 0.5-point target.

Corruptions without a torch version are listed as missing. Usage (from the repository root)::

    python benchmarks/corruption_fidelity.py --limit 8 --corruptions snow,fog --out /tmp/fidelity.md
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import math
import multiprocessing as mp
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]  # for default paths only; the package is imported as installed

DIFF_TARGET_POINTS = 2.0  # per cell
MEAN_DIFF_TARGET_POINTS = 0.5  # mean over cells
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
TORCH_MODULES = ("noise", "blur", "weather", "digital", "colour_warps", "cbar")


# -- reference rendering in worker processes ---------------------------------------------------------------------------

_WORKER_IMAGES: np.ndarray | None = None


def _init_worker(images: np.ndarray) -> None:
    global _WORKER_IMAGES
    _WORKER_IMAGES = images
    import robustbench_sympie.corruptions.colour_warps  # noqa: F401  (registers every family)
    import robustbench_sympie.corruptions.imagenet_c  # noqa: F401


def _reference_one(args: tuple[str, int, int, int]) -> np.ndarray:
    from robustbench_sympie.corruptions import get_corruption

    name, index, severity, seed = args
    return get_corruption(name)(_WORKER_IMAGES[index], severity, seed)


def render_reference(pool, workers: int, name: str, severity: int, seeds: list[int]) -> tuple[np.ndarray, float]:
    """The reference rendering of every pool image (``N x H x W x 3``) and its seconds."""
    start = time.perf_counter()
    out = np.stack(pool.map(_reference_one, [(name, i, severity, s) for i, s in enumerate(seeds)],
                            chunksize=max(1, len(seeds) // (4 * workers))))
    return out, time.perf_counter() - start


def render_torch(fn, clean: np.ndarray, severity: int, seeds: list[int], device, batch_size: int
                 ) -> tuple[np.ndarray, float]:
    """The torch backend's rendering of ``clean`` in batches on ``device`` (``N x H x W x 3`` uint8) and its
    seconds."""
    import torch

    from robustbench_sympie.corruptions.torch_backend.base import corrupt_batch

    start = time.perf_counter()
    outs = []
    for b in range(0, len(clean), batch_size):
        batch = torch.from_numpy(clean[b:b + batch_size]).permute(0, 3, 1, 2).to(device)
        out = corrupt_batch(fn, batch, severity, torch.tensor(seeds[b:b + batch_size], dtype=torch.int64))
        outs.append(out.permute(0, 2, 3, 1).cpu().numpy())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return np.concatenate(outs), time.perf_counter() - start


def top1_flags(model, images_u8: np.ndarray, labels, device, batch_size: int) -> np.ndarray:
    """Whether ``model``'s top-1 class is the label, per image (``N x H x W x 3`` uint8 in, bool array out)."""
    import torch

    flags = []
    with torch.no_grad():
        for start in range(0, len(images_u8), batch_size):
            chunk = torch.from_numpy(images_u8[start:start + batch_size]).permute(0, 3, 1, 2)
            logits = model(chunk.to(device).float() / 255.0)
            flags.append((logits.argmax(1).cpu() == labels[start:start + len(chunk)]).numpy())
    return np.concatenate(flags)


# -- statistics --------------------------------------------------------------------------------------------------------


def psnr(corrupted: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB (``N x H x W x 3`` uint8 each), capped at 100 dB for identical images."""
    mse = ((corrupted.astype(np.float64) - clean.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 255.0 ** 2 * 1e-10))


def paired_difference(correct_torch: np.ndarray, correct_ref: np.ndarray) -> tuple[float, float, float, float]:
    """Torch - reference top-1 in points, its 95 % percentile-bootstrap interval over images, McNemar exact p."""
    from scipy.stats import binomtest

    diff = correct_torch.astype(np.float64) - correct_ref.astype(np.float64)
    n = len(diff)
    mean = 100.0 * diff.mean()
    gen = np.random.default_rng(BOOTSTRAP_SEED)
    boots = 100.0 * diff[gen.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    only_torch = int(np.sum(correct_torch & ~correct_ref))
    only_ref = int(np.sum(correct_ref & ~correct_torch))
    p = binomtest(only_torch, only_torch + only_ref, 0.5).pvalue if only_torch + only_ref else 1.0
    return mean, float(low), float(high), float(p)


@dataclass
class Cell:
    corruption: str
    severity: int
    deterministic: bool
    psnr_reference: float
    psnr_torch: float
    mean_abs_diff: float
    top1_reference: float
    top1_torch: float
    diff_points: float
    ci_low: float
    ci_high: float
    mcnemar_p: float
    meets_target: bool
    seconds_reference: float
    seconds_torch: float

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Cell:
        """A cell read back from the CSV (``--csv``) of an earlier, interrupted run."""
        kinds = {"corruption": str, "severity": int, "deterministic": lambda v: v == "True",
                 "meets_target": lambda v: v == "True"}
        return cls(**{k: kinds.get(k, float)(v) for k, v in row.items()})


def _done_cells(path: str | None, n_images: int, data_root: str) -> dict[tuple[str, int], Cell]:
    """Cells already in ``path`` from a run on the same images (resuming), keyed by (corruption, severity)."""
    if not path or not Path(path).is_file():
        return {}
    marker = Path(path).with_suffix(".run")
    if not marker.is_file() or marker.read_text().strip() != f"{n_images} {data_root}":
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("severity")]
    return {(r["corruption"], int(r["severity"])): Cell.from_row(r) for r in rows}


def _append_csv(path: str, cell: Cell) -> None:
    new = not Path(path).is_file() or Path(path).stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(cell).keys()))
        if new:
            writer.writeheader()
        writer.writerow(asdict(cell))
        handle.flush()


# -- main --------------------------------------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options this script shares with ``fidelity_redraws.py``: images, severities, batch, device, workers."""
    default_root = (REPO_ROOT / ".." / "shared" / "data" / "imagenet-sample").resolve()
    parser.add_argument("--data-root", default=str(default_root),
                        help="clean ImageNet-style image folder (default: ../shared/data/imagenet-sample)")
    parser.add_argument("--limit", type=int, default=None, help="evenly spaced subset of this many images")
    parser.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the reference")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--corruptions", default="benchmark",
                        help="comma-separated corruptions or groups (default: the 15 benchmark corruptions)")
    parser.add_argument("--out", default=str(REPO_ROOT / "leaderboards" / "corruption_fidelity.md"))
    parser.add_argument("--csv", default=None, help="also write the cells as CSV here, one row as each cell "
                        "finishes; a rerun with the same images resumes from the cells already there")
    return parser.parse_args(argv)


def _corruption_names(spec: str) -> list[str]:
    from robustbench_sympie.corruptions import CORRUPTION_GROUPS

    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        for name in CORRUPTION_GROUPS[part]() if part in CORRUPTION_GROUPS else [part]:
            if name not in names:
                names.append(name)
    return names


def _load_torch_backend() -> dict:
    """The registered torch corruptions; modules not written yet are skipped."""
    for module in TORCH_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(f"robustbench_sympie.corruptions.torch_backend.{module}")
    from robustbench_sympie.corruptions.torch_backend import base

    return base.TORCH_CORRUPTIONS


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


@dataclass
class FidelityInputs:
    """What both fidelity scripts set up from their common options: the cells to run, the images, the model."""

    device: Any
    severities: list[int]
    names: list[str]
    torch_corruptions: dict
    records: list
    clean: np.ndarray
    labels: Any
    model: Any


def load_inputs(args: argparse.Namespace) -> FidelityInputs:
    """Validate ``args.corruptions`` (did-you-mean on unknown names), load the images and efficientnet_lite0."""
    import torch

    import robustbench_sympie.corruptions.colour_warps  # noqa: F401
    import robustbench_sympie.corruptions.imagenet_c  # noqa: F401
    from robustbench_sympie.corruptions import get_corruption
    from robustbench_sympie.imageio import Preprocess, evenly_spaced, load_rgb, scan_image_folder
    from robustbench_sympie.models import create_model

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    names = _corruption_names(args.corruptions)
    for name in names:
        get_corruption(name)  # unknown names fail here, with a did-you-mean
    records = evenly_spaced(scan_image_folder(args.data_root), args.limit)
    preprocess = Preprocess(256, 224)
    return FidelityInputs(
        device=device,
        severities=[int(s) for s in args.severities.split(",") if s.strip()],
        names=names,
        torch_corruptions=_load_torch_backend(),
        records=records,
        clean=np.stack([preprocess(load_rgb(r.path)) for r in records]),
        labels=torch.tensor([r.label for r in records]),
        model=create_model("efficientnet_lite0").eval().to(device),
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from robustbench_sympie.corruptions import get_corruption, sample_seed

    inputs = load_inputs(args)
    device, severities, names, torch_corruptions = inputs.device, inputs.severities, inputs.names, \
        inputs.torch_corruptions
    records, clean, labels, model = inputs.records, inputs.clean, inputs.labels, inputs.model
    missing = [n for n in names if n not in torch_corruptions]
    present = [n for n in names if n in torch_corruptions]
    print(f"{len(records)} images from {args.data_root}; device {device}; {len(present)} corruptions with a torch "
          f"version, {len(missing)} without", flush=True)

    def correct(images_u8: np.ndarray) -> np.ndarray:
        return top1_flags(model, images_u8, labels, device, args.batch_size)

    clean_top1 = 100.0 * correct(clean).mean()
    cells: list[Cell] = []
    done = _done_cells(args.csv, len(records), str(args.data_root))
    if args.csv and not done:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        Path(args.csv).write_text("", encoding="utf-8")
        Path(args.csv).with_suffix(".run").write_text(f"{len(records)} {args.data_root}\n", encoding="utf-8")
    elif done:
        print(f"resuming: {len(done)} cells already in {args.csv}", flush=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(clean,)) as pool:
        for name in present:
            reference = get_corruption(name)
            probe = clean[0]
            deterministic = np.array_equal(reference(probe, 3, 1), reference(probe, 3, 2))
            for severity in severities:
                if (name, severity) in done:
                    cells.append(done[(name, severity)])
                    continue
                seeds = [sample_seed(r.image_id, name, severity, 0) for r in records]
                ref, seconds_ref = render_reference(pool, args.workers, name, severity, seeds)
                tor, seconds_torch = render_torch(torch_corruptions[name], clean, severity, seeds, device,
                                                  args.batch_size)
                ok_ref, ok_torch = correct(ref), correct(tor)
                diff, low, high, p = paired_difference(ok_torch, ok_ref)
                cell = Cell(name, severity, bool(deterministic), float(psnr(ref, clean).mean()),
                            float(psnr(tor, clean).mean()),
                            float(np.abs(ref.astype(np.float64) - tor.astype(np.float64)).mean()),
                            100.0 * ok_ref.mean(), 100.0 * ok_torch.mean(), diff, low, high, p,
                            abs(diff) <= DIFF_TARGET_POINTS, seconds_ref, seconds_torch)
                cells.append(cell)
                if args.csv:
                    _append_csv(args.csv, cell)
                print(f"{name} s{severity}: top-1 ref {cell.top1_reference:.1f} torch {cell.top1_torch:.1f} "
                      f"diff {diff:+.2f} [{low:+.2f}, {high:+.2f}] p={p:.3g}; PSNR {cell.psnr_reference:.2f}/"
                      f"{cell.psnr_torch:.2f}; |ref-torch| {cell.mean_abs_diff:.2f}", flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [
        str(Path(sys.argv[0]).resolve().relative_to(REPO_ROOT)) if Path(sys.argv[0]).resolve().is_relative_to(REPO_ROOT)
        else sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({torch.get_num_threads()} threads)"
    text = _markdown(cells, missing, command, f"torch {torch.__version__}, device {device} ({device_name})",
                     len(records), clean_top1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    if args.csv and missing:
        with open(args.csv, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([[name] for name in missing])
        print(f"wrote {args.csv}")
    return 0


def _markdown(cells: list[Cell], missing: list[str], command: str, platform: str, n_images: int,
              clean_top1: float) -> str:
    lines = [
        "# Torch corruption backend: fidelity to the numpy reference",
        "",
        f"Produced by `{command}`",
        f"on {platform}, {n_images} images (`Preprocess(256, 224)`), efficientnet_lite0 (clean top-1 "
        f"{clean_top1:.1f} %), seeds `sample_seed(image_id, corruption, severity, 0)`.",
        "",
        f"Diff = top-1(torch) - top-1(reference) in points, paired over images; 95 % percentile bootstrap "
        f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); McNemar: exact binomial test on the discordant "
        f"pairs. A cell meets the target when |diff| <= {DIFF_TARGET_POINTS:g} points. |ref - torch| is the mean "
        "absolute pixel difference; it measures fidelity only for deterministic corruptions (random ones draw "
        "other numbers in torch, so only their PSNR and accuracy are comparable).",
        "",
        "| corruption | severity | deterministic | PSNR ref (dB) | PSNR torch (dB) | \\|ref - torch\\| | "
        "top-1 ref | top-1 torch | diff (pts) | 95 % interval | McNemar p | meets ±2 | ref s | torch s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        mad = _fmt(c.mean_abs_diff) + ("" if c.deterministic else " (random)")
        lines.append(
            f"| {c.corruption} | {c.severity} | {'yes' if c.deterministic else 'no'} | {_fmt(c.psnr_reference)} | "
            f"{_fmt(c.psnr_torch)} | {mad} | {_fmt(c.top1_reference, 1)} | {_fmt(c.top1_torch, 1)} | "
            f"{c.diff_points:+.2f} | [{c.ci_low:+.2f}, {c.ci_high:+.2f}] | {c.mcnemar_p:.3g} | "
            f"{'yes' if c.meets_target else '**no**'} | {c.seconds_reference:.2f} | {c.seconds_torch:.2f} |")
    if cells:
        lines += ["", "## Per corruption (mean over severities)", "",
                  "| corruption | PSNR ref | PSNR torch | \\|ref - torch\\| | top-1 ref | top-1 torch "
                  "| mean diff (pts) "
                  "| cells meeting ±2 |", "|---|---|---|---|---|---|---|---|"]
        for name in dict.fromkeys(c.corruption for c in cells):
            group = [c for c in cells if c.corruption == name]

            def avg(field: str, group=group) -> float:
                return float(np.mean([getattr(c, field) for c in group]))

            lines.append(
                f"| {name} | {_fmt(avg('psnr_reference'))} | {_fmt(avg('psnr_torch'))} | "
                f"{_fmt(avg('mean_abs_diff'))}{'' if group[0].deterministic else ' (random)'} | "
                f"{_fmt(avg('top1_reference'), 1)} | {_fmt(avg('top1_torch'), 1)} | {avg('diff_points'):+.2f} | "
                f"{sum(c.meets_target for c in group)}/{len(group)} |")
        mean_diff = float(np.mean([c.diff_points for c in cells]))
        lines += ["", f"**Overall**: mean diff over {len(cells)} cells = {mean_diff:+.2f} points "
                      f"({'meets' if abs(mean_diff) <= MEAN_DIFF_TARGET_POINTS else '**misses**'} the "
                      f"±{MEAN_DIFF_TARGET_POINTS:g}-point target); mean top-1 reference "
                      f"{np.mean([c.top1_reference for c in cells]):.2f}, torch "
                      f"{np.mean([c.top1_torch for c in cells]):.2f}; "
                      f"{sum(c.meets_target for c in cells)}/{len(cells)} cells within ±{DIFF_TARGET_POINTS:g} points."]
    if missing:
        lines += ["", "Missing (no torch version registered): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
