"""Aggregation of results tables: pooling, Corruption Error / mCE, deltas against ``identity``, breakdowns.

Everything here is a pure function of DataFrames in the long results format of :mod:`.results`. Accuracies are
pooled from the counts (``n_correct_top1 / n``), so cells with different image counts are weighted by images.
Units follow the column names: ``top1``/``top5`` are fractions, ``*_pct`` and ``CE``/``mCE`` are percentages,
``*_pts`` are percentage points.

Several results files (runs, machines, shards of one grid) can be concatenated with :func:`load_results`. A cell
that appears more than once is reported by :func:`find_duplicates` and kept once: identical repeats (same counts
and configuration) are dropped silently, conflicting ones raise :class:`~.errors.DataError` unless the caller
chooses which copy wins. Rows of independent shards (``run_suite --shard K/N``, column ``shard``) are first
summed into whole cells by :func:`merge_shards`, which refuses a missing or repeated shard.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from .corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from .errors import DataError
from .image_set import label_image_sets
from .reference_data import ALEXNET_CLEAN_ERROR, alexnet_errors
from .results import KEY_COLUMNS, read_results

#: an enhancer x model x dataset: the unit every table is computed for
GROUP: tuple[str, ...] = ("enhancer", "model", "dataset")
#: optional columns that split a cell further (ImageNet-C-Mixed: corruptions per image; VizWiz: quality flag)
BREAKDOWN_COLUMNS: tuple[str, ...] = ("n_corruptions", "quality_flag")
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_correct_top1", "n_correct_top5")
#: two copies of a cell are the same measurement when these agree
SIGNATURE_COLUMNS: tuple[str, ...] = ("n", "n_correct_top1", "n_correct_top5", "n_skipped", "config_hash",
                                      "confusion")
#: an enhancer is compared with the baseline on the same model and the same data: these must match when present
#: (``data_root`` is left out on purpose: the same images live at different paths on different machines)
PAIRING_COLUMNS: tuple[str, ...] = ("model_weights", "n_images", "seed", "resize", "crop")
CLEAN = "clean"
#: ImageNet-C-Mixed names the cell of the images that received k corruptions ``mixed_<k>`` (severity 0)
MIXED_CELL = r"^mixed_(\d+)$"
#: VizWiz names the cell of the images carrying a quality flag ``flag_<FLAG>`` (severity 0)
FLAG_CELL = r"^flag_(\w+)$"
BASELINE = "identity"
ON_CONFLICT = ("error", "first", "last")
#: ``K/N`` in the ``shard`` column of a shard's rows
SHARD = re.compile(r"^(\d+)/(\d+)$")
#: summed when the shards of a cell are merged (the accuracies are recomputed from the counts)
SHARD_SUMMED: tuple[str, ...] = ("n", "n_correct_top1", "n_correct_top5", "n_skipped", "seconds",
                                 "compute_seconds", "data_seconds")


# ------------------------------------------------------------------------------------------------
# loading and duplicates
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedResults:
    """Concatenated results, one row per cell, and the report of the duplicated cells that were merged."""

    frame: pd.DataFrame
    duplicates: pd.DataFrame

    @property
    def n_dropped(self) -> int:
        """Rows removed because their cell was already present."""
        return len(self.duplicates) - len(self.duplicates.drop_duplicates(cell_key(self.duplicates)))


def cell_key(frame: pd.DataFrame) -> list[str]:
    """The columns identifying a cell: :data:`~.results.KEY_COLUMNS` plus the breakdown columns present."""
    return list(KEY_COLUMNS) + [c for c in BREAKDOWN_COLUMNS if c in frame.columns]


def concat_results(frames: Mapping[str, pd.DataFrame] | Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate results tables, recording each row's origin in a leading ``source`` column.

    ``frames`` maps (or pairs) a source name to its table; the same name may come twice in pairs.
    """
    pairs = list(frames.items() if isinstance(frames, Mapping) else frames)
    if not pairs:
        raise DataError("no results to aggregate")
    parts = [frame.assign(source=str(name)) for name, frame in pairs]
    combined = pd.concat(parts, ignore_index=True)
    return combined[["source", *[c for c in combined.columns if c != "source"]]]


def find_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row whose cell occurs more than once, with ``conflict`` = the copies disagree on their numbers.

    Copies agree when :data:`SIGNATURE_COLUMNS` (counts and ``config_hash``) are equal; timings may differ.
    """
    key = cell_key(frame)
    repeated = frame[frame.duplicated(key, keep=False)]
    signature = [c for c in SIGNATURE_COLUMNS if c in frame.columns]
    if repeated.empty:
        return repeated.assign(conflict=pd.Series(dtype=bool))
    distinct = repeated.groupby(key, dropna=False, sort=False)[signature].transform("nunique", dropna=False)
    return repeated.assign(conflict=distinct.gt(1).any(axis=1)).sort_values(key, kind="stable")


def merge_shards(frame: pd.DataFrame) -> pd.DataFrame:
    """Sum the rows of independent shards (``shard`` = ``"K/N"``) into one row per cell; other rows pass through.

    Each cell (per image set) must hold every shard ``0/N .. N-1/N`` exactly once, computed with one
    configuration; otherwise :class:`~.errors.DataError` names the missing or repeated shards and their files.
    A merged row has the summed counts, ``top1``/``top5`` recomputed, ``n_shards`` = N and no ``shard``.
    """
    if "shard" not in frame.columns:
        return frame
    sharded = frame["shard"].notna() & (frame["shard"].astype(str).str.strip() != "")
    if not sharded.any():
        return frame
    key = cell_key(frame) + [c for c in ("image_set",) if c in frame.columns]
    problems: list[str] = []
    merged: list[pd.Series] = []
    for cell, group in frame[sharded].groupby(key, dropna=False, sort=False):
        name = "/".join(str(v) for v in (cell if isinstance(cell, tuple) else (cell,))[:5])
        problems.extend(_shard_problems(name, group))
        row = group.iloc[0].copy()
        for column in (c for c in SHARD_SUMMED if c in group.columns):
            row[column] = group[column].sum()
        n = row["n"]
        row["top1"] = row["n_correct_top1"] / n if n else float("nan")
        row["top5"] = row["n_correct_top5"] / n if n else float("nan")
        if "images_per_second" in row and "seconds" in row:
            row["images_per_second"] = round(n / row["seconds"], 2) if row["seconds"] > 0 else float("nan")
        if "source" in group.columns:
            row["source"] = "+".join(dict.fromkeys(group["source"].astype(str)))
        row["shard"], row["n_shards"] = float("nan"), len(group)
        if "shard_images" in row:
            row["shard_images"] = float("nan")
        merged.append(row)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
        raise DataError(f"sharded results do not add up to whole cells: {shown}")
    whole = pd.DataFrame(merged).infer_objects()
    whole = whole.astype({c: frame[c].dtype for c in COUNT_COLUMNS if c in frame.columns})
    return pd.concat([frame[~sharded], whole], ignore_index=True)


def _shard_problems(cell: str, group: pd.DataFrame) -> list[str]:
    """What keeps the shard rows of one cell from adding up: missing, repeated or mismatched shards."""
    parsed = [SHARD.match(str(s).strip()) for s in group["shard"]]
    if not all(parsed):
        bad = sorted({str(s) for s, m in zip(group["shard"], parsed, strict=True) if not m})
        return [f"cell {cell}: unreadable shard label(s) {bad} (expected K/N)"]
    specs = [(int(m[1]), int(m[2])) for m in parsed if m]
    counts = sorted({n for _, n in specs})
    if len(counts) > 1:
        return [f"cell {cell}: shards of different splits ({', '.join(f'of {n}' for n in counts)}) cannot be merged"]
    total = counts[0]
    sources = group["source"].astype(str).tolist() if "source" in group.columns else ["?"] * len(group)
    seen = Counter(k for k, _ in specs)
    problems = [f"cell {cell}: shard {k}/{total} is missing" for k in range(total) if k not in seen]
    for k, times in sorted(seen.items()):
        if times > 1:
            files = ", ".join(s for (j, _), s in zip(specs, sources, strict=True) if j == k)
            problems.append(f"cell {cell}: shard {k}/{total} appears {times} times ({files})")
    if "config_hash" in group.columns and group["config_hash"].astype(str).nunique() > 1:
        problems.append(f"cell {cell}: shards computed with different settings "
                        f"(config {sorted(group['config_hash'].astype(str).unique())})")
    return problems


class ConflictingCellsError(DataError):
    """Copies of a cell disagree; ``what`` says which cells, the message adds how to choose (API wording)."""

    def __init__(self, what: str, how: str) -> None:
        super().__init__(f"{what}; {how}")
        self.what = what


def deduplicate(frame: pd.DataFrame, on_conflict: str = "error") -> LoadedResults:
    """Keep one row per cell; conflicting copies raise unless ``on_conflict`` is ``"first"`` or ``"last"``."""
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT}, got {on_conflict!r}")
    frame = merge_shards(frame)  # independent shards of a cell -> one whole cell
    frame = label_image_sets(frame)  # cells of different image sets are different cells, shown side by side
    duplicates = find_duplicates(frame)
    conflicts = duplicates[duplicates["conflict"]]
    if len(conflicts) and on_conflict == "error":
        key = cell_key(frame)
        cells = conflicts.drop_duplicates(key)[key].astype(str).agg("/".join, axis=1)
        shown = ", ".join(cells.head(5)) + (" ..." if len(cells) > 5 else "")
        raise ConflictingCellsError(
            f"{len(cells)} cell(s) appear with different numbers in the results ({shown})",
            "pass on_conflict='first' or 'last' to choose which copy counts",
        )
    kept = frame.drop_duplicates(cell_key(frame), keep="last" if on_conflict == "last" else "first")
    return LoadedResults(kept.reset_index(drop=True), duplicates.reset_index(drop=True))


def load_results(paths: str | os.PathLike | Iterable[str | os.PathLike], on_conflict: str = "error"
                 ) -> LoadedResults:
    """Read, concatenate and deduplicate results files (see :func:`deduplicate`). ``paths`` is one path or
    several; a run folder stands for its ``results.csv``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames: list[tuple[str, pd.DataFrame]] = []
    for path in paths:
        if Path(path).is_dir():
            path = Path(path) / "results.csv"
        if not Path(path).is_file():
            raise DataError(f"results file {os.fspath(path)} does not exist")
        frames.append((os.fspath(path), read_results(path)))
    return deduplicate(concat_results(frames), on_conflict)


# ------------------------------------------------------------------------------------------------
# pooled accuracies
# ------------------------------------------------------------------------------------------------
def pooled(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Sum the counts over the rows of each group of ``by`` and recompute ``top1``/``top5`` (fractions)."""
    sums = frame.groupby(list(by), sort=False, dropna=False)[list(COUNT_COLUMNS)].sum().reset_index()
    images = sums["n"].where(sums["n"] > 0)
    return sums.assign(top1=sums["n_correct_top1"] / images, top5=sums["n_correct_top5"] / images)


def corruption_order(names: Iterable[str]) -> list[str]:
    """``clean``, then the benchmark corruptions in the published order, the extra ones, then any others."""
    names = list(dict.fromkeys(names))
    known = [CLEAN, *BENCHMARK_CORRUPTIONS, *EXTRA_CORRUPTIONS]
    return [c for c in known if c in names] + sorted(c for c in names if c not in known)


def label(frame: pd.DataFrame) -> pd.Series:
    """``enhancer @ model`` for every row."""
    return frame["enhancer"].astype(str) + " @ " + frame["model"].astype(str)


def cell_table(results: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """``metric`` in % with one row per (dataset, corruption, severity) and one column per enhancer @ model."""
    cells = pooled(results, [*GROUP, "corruption", "severity"])
    table = cells.assign(column=label(cells), value=cells[metric] * 100).pivot_table(
        index=["dataset", "corruption", "severity"], columns="column", values="value", aggfunc="first", sort=False
    )
    table.columns.name = None
    return table


def severity_span(severities: pd.Series) -> str:
    """``"1-5"`` for a contiguous run, else ``"1,3,5"``."""
    values = sorted(int(s) for s in pd.unique(severities))
    contiguous = len(values) > 2 and values == list(range(values[0], values[-1] + 1))
    return f"{values[0]}-{values[-1]}" if contiguous else ",".join(map(str, values))


def per_corruption(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1/top-5 per (enhancer, model, dataset, corruption), pooled over severities, with the severities used."""
    by = [*GROUP, "corruption"]
    table = pooled(results, by)
    spans = results.groupby(by, sort=False, dropna=False)["severity"].agg(severity_span).rename("severities")
    return table.merge(spans.reset_index(), on=by, how="left")


def per_severity(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1/top-5 per (enhancer, model, dataset, severity), pooled over the corrupted cells; clean is severity 0.

    Cells without a severity of their own (severity 0 but not ``clean``, e.g. ImageNet-C-Mixed's ``mixed_<k>``)
    are left out rather than pooled with clean.
    """
    by = [*GROUP, "severity"]
    results = results[(results["severity"] != 0) | (results["corruption"] == CLEAN)]
    table = pooled(results, by)
    counts = results.groupby(by, sort=False, dropna=False)["corruption"].nunique().rename("n_corruptions")
    return table.merge(counts.reset_index(), on=by, how="left").sort_values([*GROUP, "severity"], kind="stable")


def corrupted_mean(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1/top-5 per (enhancer, model, dataset) pooled over every corrupted cell (clean excluded)."""
    return pooled(results[results["corruption"] != CLEAN], list(GROUP))


def clean_accuracy(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1/top-5 on the clean images per (enhancer, model, dataset)."""
    return pooled(results[results["corruption"] == CLEAN], list(GROUP))


# ------------------------------------------------------------------------------------------------
# Corruption Error and mCE (Hendrycks & Dietterich, ICLR 2019)
# ------------------------------------------------------------------------------------------------
def corruption_errors(results: pd.DataFrame, reference: pd.DataFrame | None = None,
                      reference_clean_error: float = ALEXNET_CLEAN_ERROR) -> pd.DataFrame:
    """CE and relative CE (in %) per (enhancer, model, dataset, corruption) with an AlexNet reference.

    ``CE = sum_s E_s / sum_s A_s`` and ``relative CE = sum_s (E_s - E_clean) / sum_s (A_s - A_clean)``, the sums
    running over the severities present in the results (all five for the published metric; fewer gives a
    *partial* CE over the same severities of both networks). ``E`` is the top-1 error, ``A`` AlexNet's
    (:func:`~.reference_data.alexnet_errors` unless ``reference`` is given). Relative CE is NaN without a clean
    row for the group.
    """
    reference = alexnet_errors() if reference is None else reference
    cells = pooled(results[results["corruption"] != CLEAN], [*GROUP, "corruption", "severity"])
    clean = clean_accuracy(results)
    cells = cells.merge(reference, on=["corruption", "severity"], how="inner")
    cells = cells.merge(clean.assign(clean_error=1 - clean["top1"])[[*GROUP, "clean_error"]], on=list(GROUP),
                        how="left")
    sums = cells.assign(error=1 - cells["top1"]).groupby([*GROUP, "corruption"], sort=False).agg(
        error_sum=("error", "sum"), alexnet_error_sum=("alexnet_error", "sum"), n_severities=("severity", "size"),
        severities=("severity", severity_span), clean_error=("clean_error", "first"), n=("n", "max"),
    ).reset_index()
    relative_num = sums["error_sum"] - sums["n_severities"] * sums["clean_error"]
    relative_den = sums["alexnet_error_sum"] - sums["n_severities"] * reference_clean_error
    return sums.assign(
        CE=100 * sums["error_sum"] / sums["alexnet_error_sum"],
        relative_CE=100 * relative_num / relative_den,
        benchmark=sums["corruption"].isin(BENCHMARK_CORRUPTIONS),
    )


def mce(results: pd.DataFrame, reference: pd.DataFrame | None = None,
        reference_clean_error: float = ALEXNET_CLEAN_ERROR) -> pd.DataFrame:
    """mCE and relative mCE (in %) per (enhancer, model, dataset): the mean CE over the 15 benchmark corruptions.

    Columns: ``enhancer, model, mCE, relative_mCE, dataset, clean_error_pct, n_corruptions, n_cells, n_images,
    complete``. ``complete`` is true only when all 15 corruptions at all 5 severities are present; otherwise the
    figures are partial (the mean over the corruptions present, each normalised over its own severities) and are
    not comparable with published mCE values. It is computed for every dataset whose corruption names have an
    AlexNet reference; the normalisation is meaningful only for ImageNet-C-style corruptions of ImageNet images.
    """
    errors = corruption_errors(results, reference, reference_clean_error)
    benchmark = errors[errors["benchmark"]]
    table = benchmark.groupby(list(GROUP), sort=False).agg(
        mCE=("CE", "mean"), relative_mCE=("relative_CE", "mean"), clean_error=("clean_error", "first"),
        n_corruptions=("corruption", "nunique"), n_cells=("n_severities", "sum"), n_images=("n", "max"),
    ).reset_index()
    full = len(BENCHMARK_CORRUPTIONS)
    table["complete"] = (table["n_corruptions"] == full) & (table["n_cells"] == 5 * full)
    table["clean_error"] = 100 * table["clean_error"]
    table = table.rename(columns={"clean_error": "clean_error_pct"})
    leading = ["enhancer", "model", "mCE", "relative_mCE", "dataset"]
    return table[leading + [c for c in table.columns if c not in leading]]


# ------------------------------------------------------------------------------------------------
# deltas against the baseline, with confidence intervals
# ------------------------------------------------------------------------------------------------
def wilson_interval(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (vectorised)."""
    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def newcombe_interval(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray,
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval for ``k1/n1 - k2/n2`` (Newcombe 1998, method 10: hybrid score from Wilson intervals).

    It treats the two proportions as independent. Enhancer and baseline are scored on the same images, whose
    outcomes are positively correlated, so for these paired data the interval is conservative (too wide): a
    delta whose interval excludes zero is a real effect on these images.
    """
    p1 = np.asarray(k1, dtype=float) / np.asarray(n1, dtype=float)
    p2 = np.asarray(k2, dtype=float) / np.asarray(n2, dtype=float)
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    delta = p1 - p2
    return delta - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), delta + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def paired_cells(results: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Every non-baseline cell with the baseline's counts of the same cell (``*_baseline`` columns).

    Cells match on model, dataset, corruption, severity, the breakdown columns and :data:`PAIRING_COLUMNS`
    present; cells without a baseline counterpart are left out, so pooling the result compares like with like.
    """
    match = ["model", "dataset", "corruption", "severity",
             *[c for c in (*BREAKDOWN_COLUMNS, *PAIRING_COLUMNS) if c in results.columns]]
    base = results.loc[results["enhancer"] == baseline, [*match, *COUNT_COLUMNS]]
    base = base.rename(columns={c: f"{c}_baseline" for c in COUNT_COLUMNS})
    return results[results["enhancer"] != baseline].merge(base, on=match, how="inner")


def deltas_vs_baseline(results: pd.DataFrame, by: Sequence[str] = ("corruption", "severity"),
                       baseline: str = BASELINE, confidence: float = 0.95,
                       corrupted_only: bool = False) -> pd.DataFrame:
    """Each enhancer minus ``baseline`` on the same model and data, pooled over the paired cells not split by ``by``.

    Columns: ``enhancer, model, dataset, *by, n, n_baseline, top1_pct, top1_baseline_pct, delta_top1_pts,
    delta_top1_rel_pct`` (relative to the baseline's accuracy), ``ci_low_pts, ci_high_pts`` (see
    :func:`newcombe_interval`), ``significant`` (the interval excludes 0), ``delta_top5_pts``. Only cells
    present for both (see :func:`paired_cells`) are pooled.
    """
    data = results[results["corruption"] != CLEAN] if corrupted_only else results
    counts = [*COUNT_COLUMNS, *(f"{c}_baseline" for c in COUNT_COLUMNS)]
    sums = paired_cells(data, baseline).groupby([*GROUP, *by], sort=False, dropna=False)[counts].sum()
    sums = sums.reset_index()
    n, n_base = sums["n"].where(sums["n"] > 0), sums["n_baseline"].where(sums["n_baseline"] > 0)
    top1, top1_base = sums["n_correct_top1"] / n, sums["n_correct_top1_baseline"] / n_base
    low, high = newcombe_interval(sums["n_correct_top1"], n, sums["n_correct_top1_baseline"], n_base, confidence)
    return pd.DataFrame({
        **{c: sums[c] for c in (*GROUP, *by)},
        "n": sums["n"], "n_baseline": sums["n_baseline"],
        "top1_pct": 100 * top1, "top1_baseline_pct": 100 * top1_base,
        "delta_top1_pts": 100 * (top1 - top1_base),
        "delta_top1_rel_pct": 100 * (top1 - top1_base) / top1_base.where(top1_base > 0),
        "ci_low_pts": 100 * low, "ci_high_pts": 100 * high,
        "significant": (low > 0) | (high < 0),
        "delta_top5_pts": 100 * (sums["n_correct_top5"] / n - sums["n_correct_top5_baseline"] / n_base),
    })


# ------------------------------------------------------------------------------------------------
# breakdowns (ImageNet-C-Mixed, VizWiz)
# ------------------------------------------------------------------------------------------------
def breakdown(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """Top-1/top-5 per (enhancer, model, dataset, ``column``) over the rows where ``column`` is set."""
    if column not in results.columns:
        raise DataError(f"the results have no {column!r} column to break down by")
    return pooled(results[results[column].notna()], [*GROUP, column]).sort_values([*GROUP, column], kind="stable")


def with_mixed_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``n_corruptions`` parsed from ImageNet-C-Mixed cell names (``mixed_<k>``, see :mod:`.data.mixed`).

    Rows of other cells get NaN; a results table that already has the column is returned unchanged.
    """
    if "n_corruptions" in results.columns:
        return results
    counts = results["corruption"].astype(str).str.extract(MIXED_CELL, expand=False)
    return results.assign(n_corruptions=pd.to_numeric(counts).astype("Int64"))


def mixed_breakdown(results: pd.DataFrame) -> pd.DataFrame:
    """ImageNet-C-Mixed: accuracy by the number of corruptions applied to each image (``n_corruptions``)."""
    return breakdown(with_mixed_counts(results), "n_corruptions")


def with_quality_flags(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``quality_flag`` parsed from VizWiz cell names (``flag_<FLAG>``, see :mod:`.data.vizwiz`).

    Rows of other cells get NaN; a results table that already has the column is returned unchanged.
    """
    if "quality_flag" in results.columns:
        return results
    return results.assign(quality_flag=results["corruption"].astype(str).str.extract(FLAG_CELL, expand=False))


def with_breakdown_columns(results: pd.DataFrame) -> pd.DataFrame:
    """``n_corruptions`` (ImageNet-C-Mixed) and ``quality_flag`` (VizWiz) derived from the cell names."""
    return with_quality_flags(with_mixed_counts(results))


def vizwiz_breakdown(results: pd.DataFrame) -> pd.DataFrame:
    """VizWiz: accuracy per image-quality flag (``quality_flag``, or the ``flag_<FLAG>`` cells)."""
    flagged = with_quality_flags(results)
    if flagged["quality_flag"].isna().all():
        raise DataError("the results have no 'quality_flag' column and no 'flag_<FLAG>' cells to break down by")
    return breakdown(flagged, "quality_flag")
