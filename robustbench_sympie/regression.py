"""Accuracy regression checks: compare a fresh results table with a golden one, cell by cell.

A cell regresses when its top-1 drops by more than ``tolerance_pts`` percentage points and, when
``alpha`` is given, the drop is also significant under a one-sided two-proportion z-test. Improvements
are reported, never failed. A cell present on one side only is an error, not a pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from .errors import DataError
from .results import KEY_COLUMNS, read_results

#: default tolerance: a drop larger than this many points of top-1 fails
DEFAULT_TOLERANCE_PTS = 3.0


class RegressionError(AssertionError):
    """Raised by :func:`assert_no_regression` with the readable diff table as its message."""


@dataclass(frozen=True)
class RegressionReport:
    """The cell-by-cell comparison and its verdict."""

    table: pd.DataFrame  # one row per cell: golden/new top-1, delta, p-value, status
    missing_in_new: pd.DataFrame
    missing_in_golden: pd.DataFrame
    tolerance_pts: float
    alpha: float | None

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "REGRESSION"]

    @property
    def improvements(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "improved"]

    @property
    def has_missing(self) -> bool:
        return bool(len(self.missing_in_new) or len(self.missing_in_golden))

    @property
    def passed(self) -> bool:
        return not self.has_missing and self.regressions.empty

    def format(self) -> str:
        """A markdown report: verdict line, then the diff table and any missing cells."""
        from tabulate import tabulate

        rule = f"tolerance {self.tolerance_pts:g} pts" + (f", one-sided p < {self.alpha:g}" if self.alpha else "")
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"{verdict}: {len(self.regressions)} regression(s), {len(self.improvements)} improvement(s), "
                 f"{len(self.table)} cell(s) compared ({rule})"]
        if self.has_missing:
            for name, frame in (("missing in the new results", self.missing_in_new),
                                ("missing in the golden results", self.missing_in_golden)):
                if len(frame):
                    lines += ["", f"{len(frame)} cell(s) {name}:",
                              tabulate(frame, headers="keys", tablefmt="github", showindex=False)]
        shown = self.table if len(self.table) <= 60 else self.table[self.table["status"] != "ok"]
        lines += ["", tabulate(shown, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f")]
        return "\n".join(lines)


def _one_sided_p(k_gold: np.ndarray, n_gold: np.ndarray, k_new: np.ndarray, n_new: np.ndarray) -> np.ndarray:
    """p-value of 'new accuracy < golden accuracy' (pooled two-proportion z-test)."""
    pooled = (k_gold + k_new) / (n_gold + n_new)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_gold + 1 / n_new))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (k_gold / n_gold - k_new / n_new) / se, 0.0)
    return np.array([1 - NormalDist().cdf(v) for v in np.atleast_1d(z)])


def _cells(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    keyed = frame.assign(severity=frame["severity"].astype(int))
    dup = keyed.duplicated(list(KEY_COLUMNS), keep=False)
    if dup.any():
        raise DataError(f"{where} holds duplicated cells: {keyed.loc[dup, list(KEY_COLUMNS)].to_dict('records')}")
    return keyed[[*KEY_COLUMNS, "n", "n_correct_top1"]]


def compare_results(new: pd.DataFrame, golden: pd.DataFrame, *, tolerance_pts: float = DEFAULT_TOLERANCE_PTS,
                    alpha: float | None = None) -> RegressionReport:
    """Compare ``new`` with ``golden`` cell by cell (cells keyed by enhancer, model, dataset, corruption, severity)."""
    if not 0 <= tolerance_pts < float("inf"):
        raise ValueError(f"tolerance_pts must be a finite number of points >= 0, got {tolerance_pts}")
    if alpha is not None and not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    merged = _cells(golden, "the golden results").merge(
        _cells(new, "the new results"), on=list(KEY_COLUMNS), how="outer", suffixes=("_golden", "_new"),
        indicator=True)
    keys = list(KEY_COLUMNS)
    missing_new = merged.loc[merged["_merge"] == "left_only", keys].reset_index(drop=True)
    missing_golden = merged.loc[merged["_merge"] == "right_only", keys].reset_index(drop=True)
    both = merged[merged["_merge"] == "both"].reset_index(drop=True)
    gold_pct = 100 * both["n_correct_top1_golden"] / both["n_golden"]
    new_pct = 100 * both["n_correct_top1_new"] / both["n_new"]
    delta = new_pct - gold_pct
    p = _one_sided_p(*(both[c].to_numpy(float) for c in
                       ("n_correct_top1_golden", "n_golden", "n_correct_top1_new", "n_new")))
    dropped = delta < -tolerance_pts
    if alpha is not None:
        dropped &= p < alpha
    empty = (both["n_new"] <= 0) | (both["n_golden"] <= 0) | delta.isna()
    status = np.select([empty, dropped, delta > 0, delta < 0],
                       ["REGRESSION", "REGRESSION", "improved", "within tolerance"], "ok")
    table = both[keys].assign(
        n=both["n_new"].astype(int), golden_top1_pct=gold_pct, new_top1_pct=new_pct, delta_pts=delta,
        p_drop=p, status=status)
    return RegressionReport(table, missing_new, missing_golden, tolerance_pts, alpha)


def compare_files(new: str | os.PathLike, golden: str | os.PathLike, **kwargs) -> RegressionReport:
    """:func:`compare_results` on two results CSV files."""
    return compare_results(read_results(new), read_results(golden), **kwargs)


def _as_frame(results: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    return results if isinstance(results, pd.DataFrame) else read_results(results)


def assert_no_regression(new: pd.DataFrame | str | os.PathLike, golden: pd.DataFrame | str | os.PathLike,
                         **kwargs) -> RegressionReport:
    """Raise :class:`RegressionError` (with the diff table) on a regression or a missing cell."""
    report = compare_results(_as_frame(new), _as_frame(golden), **kwargs)
    if not report.passed:
        raise RegressionError(report.format())
    return report
