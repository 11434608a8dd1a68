"""Paired statistics on per-image records: the same images scored with and without an enhancer.

For an enhancer against the baseline on the same (model, dataset, cell, image), each image contributes a
difference ``d = correct_enhancer - correct_baseline`` in {-1, 0, 1}. The delta is the mean of ``d``; its
interval is a **cluster bootstrap over images** (images resampled with replacement, each carrying all its cells,
so an image counted in several cells is one unit; 2,000 resamples, fixed seed), and the test is the **exact
McNemar test** on the discordant pairs (``scipy.stats.binomtest`` of enhancer-only wins among all discordant
pairs, p = 0.5). Both use the pairing that Newcombe's independent-samples interval ignores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import DataError

BASELINE = "identity"
METHOD = "paired: cluster bootstrap over images (2000 resamples, seed 0) + exact McNemar"
JOIN = ("model", "dataset", "corruption", "severity", "image_id")


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value: ``wins`` (only the enhancer right) vs ``losses`` (only the baseline)."""
    from scipy.stats import binomtest

    total = int(wins) + int(losses)
    return 1.0 if total == 0 else float(binomtest(int(wins), total, 0.5).pvalue)


def cluster_bootstrap_interval(diff_sums: np.ndarray, counts: np.ndarray, confidence: float = 0.95,
                               resamples: int = 2000, seed: int = 0, chunk: int = 200) -> tuple[float, float]:
    """Percentile interval of ``sum(d) / count`` when whole images (clusters) are resampled with replacement.

    ``diff_sums[i]`` and ``counts[i]`` are image ``i``'s summed differences and number of paired evaluations.
    """
    diff_sums, counts = np.asarray(diff_sums, dtype=float), np.asarray(counts, dtype=float)
    n = len(counts)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(float)
        estimates.append((weights @ diff_sums) / (weights @ counts))
    values = np.concatenate(estimates)
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def paired_records(records: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Every non-baseline record joined with the baseline's record of the same model, dataset, cell and image."""
    if records.empty:
        return records.assign(correct_top1_baseline=pd.Series(dtype=bool))
    base = records.loc[records["enhancer"] == baseline, [*JOIN, "correct_top1", "correct_top5"]]
    if base.empty:
        raise DataError(f"the per-image records have no {baseline!r} rows to pair with")
    base = base.rename(columns={"correct_top1": "correct_top1_baseline", "correct_top5": "correct_top5_baseline"})
    return records[records["enhancer"] != baseline].merge(base, on=list(JOIN), how="inner")


def paired_deltas(records: pd.DataFrame, by: Sequence[str] = (), baseline: str = BASELINE,
                  confidence: float = 0.95, corrupted_only: bool = False, resamples: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Enhancer minus baseline per (enhancer, model, dataset, *by), from per-image records.

    Columns: ``enhancer, model, dataset, *by, n, n_images, top1_pct, top1_baseline_pct, delta_top1_pts,
    ci_low_pts, ci_high_pts, wins, losses, p_mcnemar, significant, method``.
    """
    data = records[records["corruption"] != "clean"] if corrupted_only else records
    pairs = paired_records(data, baseline)
    keys = ["enhancer", "model", "dataset", *by]
    rows = []
    for key, group in pairs.groupby(keys, sort=False, dropna=False):
        e = group["correct_top1"].to_numpy(bool)
        b = group["correct_top1_baseline"].to_numpy(bool)
        diff = e.astype(int) - b.astype(int)
        per_image = pd.DataFrame({"image_id": group["image_id"].to_numpy(), "d": diff}).groupby("image_id")["d"]
        low, high = cluster_bootstrap_interval(per_image.sum().to_numpy(), per_image.size().to_numpy(),
                                               confidence, resamples, seed)
        wins, losses = int((e & ~b).sum()), int((~e & b).sum())
        p = mcnemar_exact(wins, losses)
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                     "n": len(group), "n_images": int(per_image.ngroups),
                     "top1_pct": 100 * e.mean(), "top1_baseline_pct": 100 * b.mean(),
                     "delta_top1_pts": 100 * diff.mean(), "ci_low_pts": 100 * low, "ci_high_pts": 100 * high,
                     "wins": wins, "losses": losses, "p_mcnemar": p,
                     "significant": p < (1 - confidence), "method": METHOD})
    columns = [*keys, "n", "n_images", "top1_pct", "top1_baseline_pct", "delta_top1_pts", "ci_low_pts",
               "ci_high_pts", "wins", "losses", "p_mcnemar", "significant", "method"]
    return pd.DataFrame(rows, columns=columns)
