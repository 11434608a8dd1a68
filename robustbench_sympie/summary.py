"""The end-of-run summary: top-1 per (corruption, severity) for every enhancer x model."""

from __future__ import annotations

import pandas as pd


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 in % with one row per (dataset, corruption, severity) and one column per enhancer @ model.

    A final ``mean (corrupted)`` row averages the corrupted cells (clean excluded).
    """
    frame = results.assign(column=results["enhancer"] + " @ " + results["model"], top1_pct=results["top1"] * 100)
    table = frame.pivot_table(index=["dataset", "corruption", "severity"], columns="column", values="top1_pct",
                              aggfunc="mean", sort=False)
    corrupted = table[table.index.get_level_values("corruption") != "clean"]
    if len(corrupted):
        table.loc[("", "mean (corrupted)", ""), :] = corrupted.mean()
    table.columns.name = None
    return table


def format_summary(results: pd.DataFrame) -> str:
    """The summary table as GitHub markdown (top-1 %, one decimal), with the image count."""
    from tabulate import tabulate

    table = summary_table(results).reset_index()
    n = results["n"].max() if len(results) else 0
    body = tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".1f")
    return f"top-1 accuracy (%), {n} images per cell\n\n{body}"
