"""Segmentation leaderboards: mIoU per dataset/condition and per corruption x severity, deltas, per-class IoU, FLOPs.

Pure functions of the long results table (see :mod:`.results`): a segmentation row carries its cell's confusion
matrix (``confusion``), and every pooled number sums the matrices of the rows it covers before computing the
metric, so cells, shards and machines combine exactly. Two summaries per dataset:

* ``pooled``: one confusion matrix over all the images of the group (ACDC's "all conditions" convention);
* ``mean of cells``: the average of the cells' mIoU (the corrupted-Cityscapes convention, like mean top-1).

Units: ``*_pct`` in %, ``delta_*_pts`` in percentage points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .aggregate import BASELINE, CLEAN, GROUP, PAIRING_COLUMNS, corruption_order
from .datasets.cityscapes_labels import CITYSCAPES_CLASSES
from .metrics import decode_confusion as decode
from .metrics import encode_confusion, iou, miou, pixel_accuracy, sum_confusions
from .tasks import SEGMENTATION

#: FLOPs resolution of the segmentation leaderboard (Cityscapes' native width x height)
SEG_RESOLUTION: tuple[int, int] = (1024, 2048)


def is_segmentation(results: pd.DataFrame) -> pd.Series:
    """Which rows are segmentation cells."""
    if "task" not in results.columns:
        return pd.Series(False, index=results.index)
    return results["task"].astype(str) == SEGMENTATION


def segmentation_rows(results: pd.DataFrame) -> pd.DataFrame:
    return results[is_segmentation(results)].reset_index(drop=True)


def pooled_confusion(results: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Sum the confusion matrices over each group of ``by``; columns ``*by, n, n_cells, n_pixels, miou, pixel_acc,
    confusion``."""
    rows = []
    for key, group in results.groupby(list(by), sort=False, dropna=False):
        matrix = sum_confusions(group["confusion"])
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                     "n": int(group["n"].sum()), "n_cells": len(group), "n_pixels": int(matrix.sum()),
                     "miou": miou(matrix), "pixel_acc": pixel_accuracy(matrix), "confusion": encode_confusion(matrix)})
    return pd.DataFrame(rows, columns=[*by, "n", "n_cells", "n_pixels", "miou", "pixel_acc", "confusion"])


def per_cell(results: pd.DataFrame) -> pd.DataFrame:
    """mIoU and pixel accuracy (%) per enhancer x model x dataset x (corruption, severity)."""
    cells = pooled_confusion(results, [*GROUP, "corruption", "severity"])
    return cells.assign(miou_pct=100 * cells["miou"], pixel_acc_pct=100 * cells["pixel_acc"])


def per_condition(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and condition (ACDC's conditions, or each corruption pooled over its severities)."""
    cells = pooled_confusion(results, [*GROUP, "corruption"])
    return cells.assign(miou_pct=100 * cells["miou"], pixel_acc_pct=100 * cells["pixel_acc"])


def per_dataset(results: pd.DataFrame) -> pd.DataFrame:
    """Per enhancer x model x dataset: clean mIoU, pooled mIoU over the non-clean cells and their mean mIoU."""
    out = []
    for key, group in results.groupby(list(GROUP), sort=False):
        clean = group[group["corruption"] == CLEAN]
        adverse = group[group["corruption"] != CLEAN]
        cells = per_cell(adverse) if len(adverse) else pd.DataFrame(columns=["miou"])
        out.append({**dict(zip(GROUP, key, strict=True)), "n_cells": len(group),
                    "clean_miou_pct": 100 * miou(sum_confusions(clean["confusion"])) if len(clean) else np.nan,
                    "pooled_miou_pct": 100 * miou(sum_confusions(adverse["confusion"])) if len(adverse) else np.nan,
                    "mean_cell_miou_pct": 100 * cells["miou"].mean() if len(cells) else np.nan})
    return pd.DataFrame(out, columns=[*GROUP, "n_cells", "clean_miou_pct", "pooled_miou_pct", "mean_cell_miou_pct"])


def per_class_iou(results: pd.DataFrame, class_names: Sequence[str] = CITYSCAPES_CLASSES) -> pd.DataFrame:
    """IoU (%) of every class per enhancer x model x dataset x condition (NaN: class absent)."""
    cells = pooled_confusion(results, [*GROUP, "corruption"])
    values = [iou(sum_confusions([c])) for c in cells["confusion"]]
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(max((len(v) for v in values),
                                                                                   default=0))]
    table = pd.DataFrame([100 * v for v in values], columns=names, index=cells.index)
    return pd.concat([cells[[*GROUP, "corruption", "miou"]].assign(miou_pct=100 * cells.pop("miou")).drop(
        columns="miou"), table], axis=1)


def deltas_vs_baseline(results: pd.DataFrame, by: Sequence[str] = ("corruption", "severity"),
                       baseline: str = BASELINE) -> pd.DataFrame:
    """Each enhancer's mIoU minus the baseline's on the same model, data and cells, pooled over ``by`` groups.

    Only cells that both have are pooled. Columns: ``enhancer, model, dataset, *by, miou_pct, miou_baseline_pct,
    delta_miou_pts, pixel_acc_pct, pixel_acc_baseline_pct, delta_pixel_acc_pts``.
    """
    match = ["model", "dataset", "corruption", "severity", *[c for c in PAIRING_COLUMNS if c in results.columns]]
    base = results.loc[results["enhancer"] == baseline, [*match, "confusion"]]
    paired = results[results["enhancer"] != baseline].merge(base, on=match, how="inner", suffixes=("", "_baseline"))
    rows = []
    keys = ["enhancer", "model", "dataset", *by]
    for key, group in paired.groupby(keys, sort=False, dropna=False):
        mine, theirs = sum_confusions(group["confusion"]), sum_confusions(group["confusion_baseline"])
        rows.append({**dict(zip(keys, key, strict=True)), "n_cells": len(group),
                     "miou_pct": 100 * miou(mine), "miou_baseline_pct": 100 * miou(theirs),
                     "delta_miou_pts": 100 * (miou(mine) - miou(theirs)),
                     "pixel_acc_pct": 100 * pixel_accuracy(mine),
                     "pixel_acc_baseline_pct": 100 * pixel_accuracy(theirs),
                     "delta_pixel_acc_pts": 100 * (pixel_accuracy(mine) - pixel_accuracy(theirs))})
    return pd.DataFrame(rows, columns=[*keys, "n_cells", "miou_pct", "miou_baseline_pct", "delta_miou_pts",
                                       "pixel_acc_pct", "pixel_acc_baseline_pct", "delta_pixel_acc_pts"])


def _miou_batch(matrices: np.ndarray) -> np.ndarray:
    """:func:`~.metrics.miou` of each of ``N x K x K`` matrices."""
    inter = np.diagonal(matrices, axis1=1, axis2=2)
    union = matrices.sum(1) + matrices.sum(2) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    present = np.isfinite(values).any(1)
    return np.where(present, np.nansum(values, 1) / np.maximum(np.isfinite(values).sum(1), 1), np.nan)


def load_segmentation_records(*folders: str | Path) -> pd.DataFrame:
    """Per-image segmentation records under run folders (``OUT/segmentation_records/*.parquet``).

    The same (pair, cell, image) written twice (a cell re-run) is kept once, the newest file winning.
    """
    from .records import SEGMENTATION_RECORDS_DIR

    found = [f for folder in folders for f in (Path(folder) / SEGMENTATION_RECORDS_DIR).glob("*.parquet")]
    files = sorted(found, key=lambda p: p.stat().st_mtime)
    if not files:
        return pd.DataFrame()
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    key = ["enhancer", "model", "dataset", "corruption", "severity", "config_hash", "image_id"]
    return table.drop_duplicates(subset=key, keep="last").reset_index(drop=True)


def paired_deltas(records: pd.DataFrame, by: Sequence[str] = ("corruption",), baseline: str = BASELINE,
                  confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Enhancer minus baseline on the same images, from per-image records, per ``enhancer, model, dataset, *by``.

    ``delta_miou_pts`` is the difference of the pooled mIoU (the leaderboard's number) with a paired bootstrap
    interval (images resampled together for both enhancers, their matrices summed); ``mean_image_delta_pts`` is
    the mean of the per-image mIoU differences; ``n_better``/``n_worse`` count images whose mIoU went up/down.
    """
    match = ["model", "dataset", "corruption", "severity", "image_id"]
    base = records.loc[records["enhancer"] == baseline, [*match, "miou", "confusion"]]
    paired = records[records["enhancer"] != baseline].merge(base, on=match, suffixes=("", "_baseline"))
    keys = ["enhancer", "model", "dataset", *by]
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    rows = []
    for key, group in paired.groupby(keys, sort=False, dropna=False):
        mine = np.stack([decode(c) for c in group["confusion"]])
        theirs = np.stack([decode(c) for c in group["confusion_baseline"]])
        n = len(group)
        weights = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)  # bootstrap resamples as image counts
        boot = _miou_batch(np.tensordot(weights, mine, axes=1)) - _miou_batch(np.tensordot(weights, theirs, axes=1))
        image_delta = group["miou"] - group["miou_baseline"]
        rows.append({**dict(zip(keys, key, strict=True)), "n_images": n,
                     "delta_miou_pts": 100 * (miou(mine.sum(0)) - miou(theirs.sum(0))),
                     "ci_low_pts": 100 * float(np.nanquantile(boot, alpha)),
                     "ci_high_pts": 100 * float(np.nanquantile(boot, 1 - alpha)),
                     "mean_image_delta_pts": 100 * float(image_delta.mean()),
                     "n_better": int((image_delta > 0).sum()), "n_worse": int((image_delta < 0).sum())})
    return pd.DataFrame(rows, columns=[*keys, "n_images", "delta_miou_pts", "ci_low_pts", "ci_high_pts",
                                       "mean_image_delta_pts", "n_better", "n_worse"])


def condition_table(results: pd.DataFrame) -> pd.DataFrame:
    """Wide mIoU (%) table: one row per enhancer @ model @ dataset, one column per condition, plus ``all``."""
    cond = per_condition(results)
    cond = cond.assign(row=cond["enhancer"] + " @ " + cond["model"], column=cond["corruption"])
    table = cond.pivot_table(index=["dataset", "row"], columns="column", values="miou_pct", sort=False)
    table = table[[c for c in corruption_order(table.columns) if c in table.columns]]
    totals = per_dataset(results)
    totals = totals.assign(row=totals["enhancer"] + " @ " + totals["model"]).set_index(["dataset", "row"])
    table["all (pooled)"] = totals["pooled_miou_pct"].reindex(table.index)
    table["mean of cells"] = totals["mean_cell_miou_pct"].reindex(table.index)
    table.columns.name = None
    return table.reset_index().rename(columns={"row": "enhancer @ model"})


def cell_grid(results: pd.DataFrame, value: str = "miou_pct") -> pd.DataFrame:
    """mIoU (%) per corruption x severity, one column per enhancer @ model @ dataset."""
    cells = per_cell(results)
    cells = cells.assign(column=cells["enhancer"] + " @ " + cells["model"] + " @ " + cells["dataset"])
    table = cells.pivot_table(index=["corruption", "severity"], columns="column", values=value, sort=False)
    table.columns.name = None
    return table.reset_index()


# ------------------------------------------------------------------------------------------------
# FLOPs at 2048 x 1024
# ------------------------------------------------------------------------------------------------
def segmentation_flops(models: Sequence[str], enhancers: Sequence[str] = ("sympie",),
                       resolution: tuple[int, int] = SEG_RESOLUTION) -> pd.DataFrame:
    """GFLOPs (2 per multiply-add, :mod:`.flops`' convention) of segmenters and enhancers at ``resolution``.

    Segmenters are built by :func:`.flops.build_model_architecture` on the meta device (torchvision's with 19
    classes, no weights needed); a module that cannot be built or counted gets NaN and a ``note``. Enhancer and
    model names may carry ``:key=value`` arguments and the ``[untrained]`` suffix (both ignored).
    """
    from .flops import build_enhancer_architecture, build_model_architecture, count_flops, count_params

    height, width = resolution
    rows = []
    jobs = [(n, "enhancer", build_enhancer_architecture) for n in enhancers]
    jobs += [(n, "segmenter", build_model_architecture) for n in models]
    for name, kind, build in jobs:
        base = name.split(":", 1)[0].removesuffix("[untrained]")
        try:
            module = build(base)
            rows.append((name, kind, count_flops(module, height, width)[0] / 1e9, count_params(module), ""))
        except Exception as exc:
            rows.append((name, kind, np.nan, 0, f"not counted: {type(exc).__name__}: {str(exc)[:80]}"))
    table = pd.DataFrame(rows, columns=["name", "kind", "gflops", "params", "note"])
    return table.assign(resolution=f"{width}x{height}")


# ------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------
def segmentation_markdown(results: pd.DataFrame, baseline: str = BASELINE) -> str:
    """``segmentation.md``: mIoU per dataset/condition, per corruption x severity, deltas vs ``baseline``."""
    from .publish import markdown_table

    parts = ["# Semantic segmentation leaderboard",
             "mIoU over the 19 Cityscapes classes present (ignore label 255), from pooled confusion matrices; "
             "`all (pooled)`: one matrix over every non-clean image of the dataset; `mean of cells`: the mean of "
             "the cells' mIoU.",
             "## mIoU per dataset and condition (%)", markdown_table(condition_table(results), floatfmt=".1f")]
    deltas = deltas_vs_baseline(results, ("corruption",), baseline)
    if len(deltas):
        shown = deltas[["enhancer", "model", "dataset", "corruption", "miou_pct", "miou_baseline_pct",
                        "delta_miou_pts", "delta_pixel_acc_pts"]]
        parts += [f"## Δ mIoU vs {baseline} per condition (pts)", markdown_table(shown, floatfmt="+.2f")]
    graded = results[results["severity"] > 0]
    if len(graded):
        parts += ["## mIoU per corruption x severity (%)", markdown_table(cell_grid(graded), floatfmt=".1f")]
    return "\n\n".join(parts)


def publish_segmentation(results: pd.DataFrame, out: str | Path, baseline: str = BASELINE,
                         with_flops: bool = True, records: pd.DataFrame | None = None,
                         confidence: float = 0.95) -> list[Path]:
    """Write the segmentation tables (markdown + CSVs) of the segmentation rows of ``results`` into ``out``.

    With ``with_flops``, also the GFLOPs at 2048 x 1024 of the results' segmenters and enhancers; with per-image
    ``records`` (:func:`load_segmentation_records`), paired per-image deltas vs ``baseline``.
    """
    from .publish import _csv, _write, markdown_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seg = segmentation_rows(results)
    text = segmentation_markdown(seg, baseline)
    written = [
        _csv(per_cell(seg).drop(columns="confusion"), out / "segmentation_cells.csv"),
        _csv(per_condition(seg).drop(columns="confusion"), out / "segmentation_conditions.csv"),
        _csv(per_dataset(seg), out / "segmentation_datasets.csv"),
        _csv(per_class_iou(seg), out / "segmentation_class_iou.csv"),
        _csv(deltas_vs_baseline(seg, ("corruption", "severity"), baseline), out / "segmentation_deltas_cells.csv"),
        _csv(deltas_vs_baseline(seg, ("corruption",), baseline), out / "segmentation_deltas_conditions.csv"),
    ]
    if records is not None and len(records) and (records["enhancer"] == baseline).any():
        paired = paired_deltas(records, ("corruption",), baseline, confidence)
        written += [_csv(paired, out / "segmentation_deltas_paired.csv"),
                    _csv(paired_deltas(records, ("corruption", "severity"), baseline, confidence),
                         out / "segmentation_deltas_paired_cells.csv")]
        text += (f"\n\n## Paired per-image Δ mIoU vs {baseline} per condition (pts; {100 * confidence:g} % paired "
                 "bootstrap over images)\n\n" + markdown_table(paired, floatfmt="+.2f"))
    if with_flops:
        enhancers = [e for e in dict.fromkeys(seg["enhancer"]) if e != BASELINE]
        flops = segmentation_flops(list(dict.fromkeys(seg["model"])), enhancers)
        written.append(_csv(flops, out / "segmentation_flops.csv"))
        text += ("\n\n## GFLOPs at 2048x1024 (one multiply-add = 2 FLOPs)\n\n"
                 + markdown_table(flops[["name", "kind", "gflops", "params", "note"]], floatfmt=".2f"))
    written.append(_write(out / "segmentation.md", text))
    return written


def format_segmentation_summary(results: pd.DataFrame) -> str:
    """The end-of-run summary of a segmentation run: mIoU (%) per dataset and condition."""
    from tabulate import tabulate

    table = condition_table(segmentation_rows(results))
    n = int(results["n"].max()) if len(results) else 0
    return (f"mIoU (%), up to {n} images per cell\n\n"
            + tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".1f"))
