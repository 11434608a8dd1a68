"""The end-of-run summary: top-1 per (corruption, severity) for every enhancer x model, plus mCE when it applies.

Built on :mod:`.aggregate`, the same code the published leaderboards use (``publish_leaderboard``).
"""

from __future__ import annotations

import pandas as pd

from .aggregate import CLEAN, cell_table, label, mce
from .image_set import label_image_sets


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 in % with one row per (dataset, corruption, severity) and one column per enhancer @ model.

    A final ``mean (corrupted)`` row averages the corrupted cells (clean excluded).
    """
    table = cell_table(results, "top1")
    corrupted = table[table.index.get_level_values("corruption") != CLEAN]
    if len(corrupted):
        table.loc[("", "mean (corrupted)", ""), :] = corrupted.mean()
    return table


def format_mce(results: pd.DataFrame) -> str:
    """One line per enhancer @ model with its mCE and relative mCE, flagged partial unless the grid is complete."""
    table = mce(results)
    if table.empty:
        return ""
    coverage = ("partial: " + table["n_corruptions"].astype(str) + "/15 corruptions, "
                + table["n_cells"].astype(str) + "/75 cells").where(~table["complete"], "complete")
    lines = ("- " + label(table) + ": mCE " + table["mCE"].map("{:.1f}".format) + " %, relative mCE "
             + table["relative_mCE"].map("{:.1f}".format) + " % (" + coverage + ")")
    return "mCE (AlexNet = 100 %, Hendrycks & Dietterich 2019)\n\n" + "\n".join(lines)


def format_summary(results: pd.DataFrame) -> str:
    """The summary table as GitHub markdown (top-1 %, one decimal), with the image count and the mCE lines."""
    from tabulate import tabulate

    from .segmentation_report import format_segmentation_summary, is_segmentation

    if len(results) and is_segmentation(results).all():
        return format_segmentation_summary(results)
    results = label_image_sets(results)  # an --out that holds several image sets shows them apart, as publishing does
    table = summary_table(results).reset_index()
    low, high = (results["n"].min(), results["n"].max()) if len(results) else (0, 0)
    body = tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".1f")
    text = f"top-1 accuracy (%), {low if low == high else f'{low} to {high}'} images per cell\n\n{body}"
    mce_text = format_mce(results) if len(results) else ""
    return f"{text}\n\n{mce_text}" if mce_text else text
