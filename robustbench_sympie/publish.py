"""Writers of the published leaderboards: GitHub markdown tables, CSVs of every number, heatmap PNGs.

Markdown tables use ``tabulate`` (GitHub style) with the unit in every numeric header and the best value of each
column in bold (highest accuracy or delta, lowest error, FLOPs or parameters). The CSVs hold the same numbers at
full precision. Heatmaps are drawn with matplotlib's object API (``Figure``), so no display is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import aggregate as agg
from . import stats
from .reference_data import ALEXNET_SOURCE, SYMPIE_PAPER_FLOPS

MISSING = "–"
ROW_KEYS: list[str] = ["enhancer", "model", "dataset"]


# ------------------------------------------------------------------------------------------------
# markdown
# ------------------------------------------------------------------------------------------------
def format_column(values: pd.Series, fmt: str, best: str | None = None) -> pd.Series:
    """Numbers as strings with ``fmt`` (NaN -> ``–``); the column's max or min (``best``) in bold.

    Values are compared as displayed (rounded), and nothing is bold when all displayed values are equal.
    """
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    text = numeric.map(lambda v: MISSING if np.isnan(v) else format(v, fmt))
    digits = re.search(r"\.(\d+)", fmt)
    shown = numeric.round(int(digits.group(1)) if digits else 6)
    if best is None or shown.nunique() < 2:
        return text
    target = shown.max() if best == "max" else shown.min()
    return text.where(shown != target, "**" + text + "**")


def markdown_table(table: pd.DataFrame, best: Mapping[str, str] | None = None,
                   floatfmt: str | Mapping[str, str] = ".1f") -> str:
    """A GitHub markdown table; numeric columns right-aligned, ``best`` maps a column to ``"max"`` or ``"min"``."""
    from tabulate import tabulate

    best = best or {}
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
               for c in table.columns]
    columns = {
        c: format_column(table[c], floatfmt if isinstance(floatfmt, str) else floatfmt.get(c, ".1f"), best.get(c))
        if is_num else table[c].astype(str).replace({"nan": MISSING, "<NA>": MISSING})
        for c, is_num in zip(table.columns, numeric, strict=True)
    }
    body = pd.DataFrame(columns, index=table.index)
    return tabulate(body.to_numpy().tolist(), headers=list(table.columns), tablefmt="github",
                    disable_numparse=True, colalign=["right" if n else "left" for n in numeric])


def wide(long: pd.DataFrame, column: str, value: str, header: str = "{} (%)", scale: float = 100.0,
         order: Sequence | None = None) -> pd.DataFrame:
    """Pivot ``long`` to one row per (enhancer, model, dataset) and one column per value of ``column``."""
    table = long.assign(_value=long[value] * scale).pivot_table(
        index=ROW_KEYS, columns=column, values="_value", aggfunc="first", sort=False)
    table = table.reindex(columns=list(order) if order is not None else list(table.columns))
    table.columns = [header.format(c) for c in table.columns]
    return table.reset_index()


# ------------------------------------------------------------------------------------------------
# results tables
# ------------------------------------------------------------------------------------------------
def accuracy_by_corruption(results: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """One row per enhancer x model x dataset: ``metric`` (%) per corruption and pooled over the corrupted cells."""
    long = agg.per_corruption(results)
    table = wide(long, "corruption", metric, order=agg.corruption_order(long["corruption"]))
    mean = agg.corrupted_mean(results)
    return table.merge(mean[ROW_KEYS].assign(**{"mean corrupted (%)": 100 * mean[metric]}), on=ROW_KEYS, how="left")


def accuracy_by_severity(results: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """One row per enhancer x model x dataset: ``metric`` (%) per severity (0 = clean), pooled over corruptions."""
    long = agg.per_severity(results)
    order = sorted(long["severity"].unique())
    table = wide(long, "severity", metric, header="severity {} (%)", order=order)
    return table.rename(columns={"severity 0 (%)": "clean (%)"})


def mce_display(mce: pd.DataFrame) -> pd.DataFrame:
    """The mCE table as published: coverage spelt out, clean top-1 instead of clean error."""
    coverage = (mce["n_corruptions"].astype(str) + "/15 corruptions, " + mce["n_cells"].astype(str)
                + "/75 cells").where(~mce["complete"], "complete")
    return pd.DataFrame({
        "enhancer": mce["enhancer"], "model": mce["model"], "dataset": mce["dataset"],
        "mCE (%)": mce["mCE"], "relative mCE (%)": mce["relative_mCE"],
        "clean top-1 (%)": 100 - mce["clean_error_pct"], "coverage": coverage,
        "images per cell": mce["n_images"],
    })


def ci_text(low: pd.Series, high: pd.Series) -> pd.Series:
    """``[-1.2, +3.4]`` per row."""
    return "[" + low.map("{:+.1f}".format).astype(str) + ", " + high.map("{:+.1f}".format).astype(str) + "]"


def delta_overview(results: pd.DataFrame, baseline: str = agg.BASELINE, confidence: float = 0.95) -> pd.DataFrame:
    """Per enhancer x model x dataset: clean and corrupted top-1 deltas against the baseline, with the CI."""
    corrupted = agg.deltas_vs_baseline(results, by=(), baseline=baseline, confidence=confidence,
                                       corrupted_only=True)
    clean = agg.deltas_vs_baseline(results[results["corruption"] == agg.CLEAN], by=(), baseline=baseline,
                                   confidence=confidence)
    level = f"{round(100 * confidence)}% CI (pts)"
    table = pd.DataFrame({
        "enhancer": corrupted["enhancer"], "model": corrupted["model"], "dataset": corrupted["dataset"],
        "corrupted top-1 (%)": corrupted["top1_pct"], f"{baseline} (%)": corrupted["top1_baseline_pct"],
        "Δ top-1 (pts)": corrupted["delta_top1_pts"], "Δ top-1 (rel %)": corrupted["delta_top1_rel_pct"],
        level: ci_text(corrupted["ci_low_pts"], corrupted["ci_high_pts"]),
        "evaluations": corrupted["n"],
    })
    clean_delta = clean[ROW_KEYS + ["delta_top1_pts"]].rename(columns={"delta_top1_pts": "clean Δ top-1 (pts)"})
    return table.merge(clean_delta, on=ROW_KEYS, how="left")


def delta_by_corruption(deltas: pd.DataFrame) -> pd.DataFrame:
    """Per-corruption deltas (pts) from :func:`~.aggregate.deltas_vs_baseline` ``by=("corruption",)``, wide."""
    order = agg.corruption_order(deltas["corruption"])
    return wide(deltas, "corruption", "delta_top1_pts", header="{} (pts)", scale=1.0, order=order)


def numeric_best(table: pd.DataFrame, rule: str, exclude: Sequence[str] = ()) -> dict[str, str]:
    """``rule`` (``"max"``/``"min"``) for every numeric column not in ``exclude``."""
    return {c: rule for c in table.columns
            if c not in exclude and c not in ROW_KEYS and pd.api.types.is_numeric_dtype(table[c])}


# ------------------------------------------------------------------------------------------------
# heatmaps
# ------------------------------------------------------------------------------------------------
def heatmap_grid(cell_deltas: pd.DataFrame) -> pd.DataFrame:
    """Δ top-1 (pts) as corruptions (benchmark order) x severities (ascending), whatever the rows' order."""
    grid = cell_deltas.pivot_table(index="corruption", columns="severity", values="delta_top1_pts", sort=False)
    grid = grid.reindex(columns=sorted(grid.columns))
    return grid.reindex(agg.corruption_order(grid.index))


def heatmap(cell_deltas: pd.DataFrame, path: Path, title: str) -> Path:
    """Δ top-1 (pts) per corruption x severity (the SyMPIE paper's Figure 6 style), saved as a PNG."""
    from matplotlib.figure import Figure

    grid = heatmap_grid(cell_deltas)
    values = grid.to_numpy(dtype=float)
    limit = max(float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0, 0.5)
    fig = Figure(figsize=(2.2 + 0.8 * grid.shape[1], 1.2 + 0.38 * grid.shape[0]))
    ax = fig.subplots()
    image = ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), labels=[str(s) for s in grid.columns])
    ax.set_yticks(range(grid.shape[0]), labels=list(grid.index))
    ax.set_xlabel("severity")
    ax.set_title(title, fontsize=10)
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(col, row, f"{value:+.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="Δ top-1 (pts)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def write_heatmaps(cell_deltas: pd.DataFrame, out: Path, baseline: str = agg.BASELINE) -> list[Path]:
    """One heatmap per enhancer x model x dataset of the corrupted cells."""
    corrupted = cell_deltas[cell_deltas["corruption"] != agg.CLEAN]
    paths = []
    for (enhancer, model, dataset), group in corrupted.groupby(ROW_KEYS, sort=False):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"heatmap_{enhancer}_{model}_{dataset}") + ".png"
        title = f"{enhancer} − {baseline}, top-1 (pts)\n{model} on {dataset}"
        paths.append(heatmap(group, out / name, title))
    return paths


# ------------------------------------------------------------------------------------------------
# the published folder
# ------------------------------------------------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return path


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, float_format="%.8g")
    return path


def cells_table(results: pd.DataFrame) -> pd.DataFrame:
    """Every cell with its counts and top-1/top-5 in %: the per-cell numbers of the summary, in long form."""
    keys = [*agg.GROUP, "corruption", "severity", *[c for c in agg.BREAKDOWN_COLUMNS if c in results.columns]]
    cells = agg.pooled(results, keys)
    return cells.assign(top1_pct=100 * cells.pop("top1"), top5_pct=100 * cells.pop("top5"))


def accuracy_markdown(results: pd.DataFrame) -> str:
    """``accuracy.md``: top-1 and top-5 per corruption and per severity."""
    sections = ["# Accuracy", "Pooled over images: each cell weighs by its number of images. "
                "`mean corrupted` pools every corrupted cell (clean excluded)."]
    for metric, title in (("top1", "Top-1"), ("top5", "Top-5")):
        by_corruption = accuracy_by_corruption(results, metric)
        by_severity = accuracy_by_severity(results, metric)
        sections += [f"## {title} per corruption (pooled over severities)",
                     markdown_table(by_corruption, numeric_best(by_corruption, "max")),
                     f"## {title} per severity (pooled over corruptions)",
                     markdown_table(by_severity, numeric_best(by_severity, "max"))]
    return "\n\n".join(sections)


def mce_markdown(mce: pd.DataFrame) -> str:
    """``mce.md``: mCE and relative mCE with their coverage."""
    table = mce_display(mce)
    best = {"mCE (%)": "min", "relative mCE (%)": "min", "clean top-1 (%)": "max"}
    intro = ("# mCE\n\nCorruption Error and mCE as defined by Hendrycks & Dietterich (ICLR 2019): per corruption, "
             "the sum over severities of the top-1 error divided by the same sum for AlexNet, averaged over the 15 "
             "benchmark corruptions; relative mCE subtracts each network's clean error first (AlexNet = 100 %). "
             "Lower is better. Rows whose coverage is not `complete` are partial: the mean over the corruptions "
             "present, each normalised over the severities present, not comparable with published mCE.\n\n"
             f"AlexNet reference: {ALEXNET_SOURCE}.")
    return intro + "\n\n" + markdown_table(table, best, floatfmt={"images per cell": ".0f"})


def deltas_markdown(overview: pd.DataFrame, by_corruption: pd.DataFrame, baseline: str, confidence: float) -> str:
    """``deltas.md``: the headline table (enhancer minus baseline) and the per-corruption deltas."""
    if overview.empty:
        return (f"# Deltas against {baseline}\n\nNo enhancer other than `{baseline}` has results paired with "
                f"`{baseline}` (same model, dataset and data settings) in these results.")
    text = [f"# Deltas against {baseline}",
            f"Enhancer minus `{baseline}` on the same model and images. `evaluations` = images x corrupted cells "
            f"pooled. The {round(100 * confidence)}% interval is Newcombe's hybrid score interval for a "
            "difference of two proportions; it ignores the pairing (same images), so it is conservative. "
            "Over pooled cells it also treats repeated images as independent.",
            markdown_table(overview, {"Δ top-1 (pts)": "max", "Δ top-1 (rel %)": "max",
                                      "clean Δ top-1 (pts)": "max"},
                           floatfmt={"evaluations": ".0f", "Δ top-1 (pts)": "+.1f", "Δ top-1 (rel %)": "+.1f",
                                     "clean Δ top-1 (pts)": "+.1f"}),
            "## Δ top-1 per corruption (pts, pooled over severities)",
            markdown_table(by_corruption, numeric_best(by_corruption, "max"), floatfmt="+.1f")]
    return "\n\n".join(text)


def breakdown_markdown(results: pd.DataFrame, column: str) -> str:
    """Top-1 per value of a breakdown column (ImageNet-C-Mixed ``n_corruptions``, VizWiz ``quality_flag``).

    The ``all (%)`` column pools every row where ``column`` is set.
    """
    subset = results[results[column].notna()]
    top1 = wide(agg.breakdown(subset, column), column, "top1", header=f"{column}={{}} (%)")
    overall = agg.pooled(subset, ROW_KEYS)
    top1 = top1.merge(overall[ROW_KEYS].assign(**{"all (%)": 100 * overall["top1"]}), on=ROW_KEYS, how="left")
    return f"# Top-1 by {column}\n\n" + markdown_table(top1, numeric_best(top1, "max"))


def paired_markdown(overall: pd.DataFrame, clean: pd.DataFrame, by_corruption: pd.DataFrame, baseline: str,
                    confidence: float) -> str:
    """The paired section of ``deltas.md``: per-image records, cluster bootstrap interval and exact McNemar test."""
    level = f"{round(100 * confidence)}% CI (pts)"
    table = pd.DataFrame({
        "enhancer": overall["enhancer"], "model": overall["model"], "dataset": overall["dataset"],
        "corrupted top-1 (%)": overall["top1_pct"], f"{baseline} (%)": overall["top1_baseline_pct"],
        "Δ top-1 (pts)": overall["delta_top1_pts"], level: ci_text(overall["ci_low_pts"], overall["ci_high_pts"]),
        "wins / losses": overall["wins"].astype(str) + " / " + overall["losses"].astype(str),
        "McNemar p": overall["p_mcnemar"].map("{:.3g}".format), "images": overall["n_images"],
        "evaluations": overall["n"],
    })
    clean_delta = clean[ROW_KEYS + ["delta_top1_pts", "p_mcnemar"]].rename(
        columns={"delta_top1_pts": "clean Δ top-1 (pts)", "p_mcnemar": "clean McNemar p"})
    table = table.merge(clean_delta, on=ROW_KEYS, how="left")
    per = by_corruption.assign(cell=by_corruption["delta_top1_pts"].map("{:+.1f}".format) + " ("
                               + by_corruption["p_mcnemar"].map("p={:.2g}".format) + ")")
    order = agg.corruption_order(per["corruption"])
    wide_table = per.pivot_table(index=ROW_KEYS, columns="corruption", values="cell", aggfunc="first")
    wide_table = wide_table[[c for c in order if c in wide_table.columns]].reset_index()
    return "\n\n".join([
        "## Paired deltas (per-image records)",
        f"Method: {stats.METHOD}. Each image is scored by both enhancers, so the interval resamples images "
        "(with all their cells) and the test uses only the discordant pairs: `wins` = images right only with the "
        f"enhancer, `losses` = right only with `{baseline}`.",
        markdown_table(table, floatfmt={"corrupted top-1 (%)": ".1f", f"{baseline} (%)": ".1f",
                                        "Δ top-1 (pts)": "+.2f", "clean Δ top-1 (pts)": "+.1f",
                                        "evaluations": ".0f", "images": ".0f"}),
        "### Δ top-1 per corruption (pts, pooled over severities; exact McNemar p)",
        markdown_table(wide_table),
    ])


def publish(loaded: agg.LoadedResults, out: str | Path, command: str = "", baseline: str = agg.BASELINE,
            confidence: float = 0.95, records: pd.DataFrame | None = None) -> list[Path]:
    """Write every table (markdown + CSV), the heatmaps and a README for ``loaded`` into ``out``.

    With per-image ``records`` (see :mod:`.records`), deltas are also computed paired (:mod:`.stats`) and
    ``deltas.md`` leads with them, naming the method.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = loaded.frame
    mce = agg.mce(results)
    cell_deltas = agg.deltas_vs_baseline(results, ("corruption", "severity"), baseline, confidence)
    corruption_deltas = agg.deltas_vs_baseline(results, ("corruption",), baseline, confidence)
    overview = delta_overview(results, baseline, confidence)
    written = [
        _csv(cells_table(results), out / "cells.csv"),
        _csv(agg.per_corruption(results), out / "per_corruption.csv"),
        _csv(agg.per_severity(results), out / "per_severity.csv"),
        _csv(agg.corruption_errors(results), out / "corruption_errors.csv"),
        _csv(mce, out / "mce.csv"),
        _csv(cell_deltas, out / "deltas_cells.csv"),
        _csv(corruption_deltas, out / "deltas_corruption.csv"),
        _csv(agg.deltas_vs_baseline(results, (), baseline, confidence, corrupted_only=True),
             out / "deltas_overall.csv"),
        _write(out / "accuracy.md", accuracy_markdown(results)),
        _write(out / "mce.md", mce_markdown(mce)),
    ]
    deltas_text = deltas_markdown(overview, delta_by_corruption(corruption_deltas), baseline, confidence)
    if records is not None and len(records) and (records["enhancer"] == baseline).any():
        paired = stats.paired_deltas(records, (), baseline, confidence, corrupted_only=True)
        paired_clean = stats.paired_deltas(records[records["corruption"] == agg.CLEAN], (), baseline, confidence)
        paired_corruption = stats.paired_deltas(records, ("corruption",), baseline, confidence,
                                                corrupted_only=True)
        written += [_csv(paired, out / "deltas_paired_overall.csv"),
                    _csv(paired_corruption, out / "deltas_paired_corruption.csv"),
                    _csv(stats.paired_deltas(records, ("corruption", "severity"), baseline, confidence),
                         out / "deltas_paired_cells.csv")]
        title, _, rest = deltas_text.partition("\n\n")
        deltas_text = "\n\n".join([title, paired_markdown(paired, paired_clean, paired_corruption, baseline,
                                                            confidence),
                                    "## Unpaired deltas (Newcombe; from the results table alone)", rest])
    written.append(_write(out / "deltas.md", deltas_text))
    with_counts = agg.with_breakdown_columns(results)
    for column in (c for c in agg.BREAKDOWN_COLUMNS if c in with_counts.columns and with_counts[c].notna().any()):
        written += [_csv(agg.breakdown(with_counts, column), out / f"breakdown_{column}.csv"),
                    _write(out / f"breakdown_{column}.md", breakdown_markdown(with_counts, column))]
    if len(loaded.duplicates):
        written.append(_csv(loaded.duplicates, out / "duplicates.csv"))
    written += write_heatmaps(cell_deltas, out, baseline)
    written.append(_write(out / "README.md", readme(loaded, written, command)))
    return written


def readme(loaded: agg.LoadedResults, files: Sequence[Path], command: str) -> str:
    """The folder's README: the command, the inputs, duplicates and the files."""
    sources = loaded.frame.groupby("source", sort=False).size() if "source" in loaded.frame else pd.Series()
    inputs = "\n".join(f"- `{name}`: {count} cells" for name, count in sources.items())
    conflicts = int(loaded.duplicates["conflict"].sum()) if len(loaded.duplicates) else 0
    duplicates = (f"{loaded.n_dropped} duplicated row(s) dropped ({conflicts} in conflicting copies); "
                  "see `duplicates.csv`." if len(loaded.duplicates) else "No duplicated cells.")
    listing = "\n".join(f"- `{p.name}`" for p in files)
    return (f"# Leaderboard\n\nProduced by:\n\n```\n{command}\n```\n\nInputs:\n\n{inputs}\n\n{duplicates}\n\n"
            f"Files:\n\n{listing}\n- `README.md`\n\nUnits: `top1`/`top5` and `miou`/`pixel_acc` fractions in the long "
            "CSVs, `*_pct` and `mCE` in %, `*_pts` in percentage points.")


# ------------------------------------------------------------------------------------------------
# FLOPs
# ------------------------------------------------------------------------------------------------
def flops_wide(flops: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per enhancer or model: params (M), then GFLOPs and GMACs at each resolution."""
    rows = flops[flops["kind"] == kind]
    resolutions = list(dict.fromkeys(rows["resolution"]))
    table = rows.drop_duplicates("name")[["name", "params"]].rename(columns={"name": kind})
    table["params (M)"] = table.pop("params") / 1e6
    for resolution in resolutions:
        at = rows[rows["resolution"] == resolution].set_index("name")
        table[f"GFLOPs {resolution}"] = table[kind].map(at["gflops"])
        table[f"GMACs {resolution}"] = table[kind].map(at["gmacs"])
    notes = rows.groupby("name", sort=False)["note"].agg(lambda s: "; ".join(sorted(set(s.fillna("")) - {""})))
    table["note"] = table[kind].map(notes).fillna("")
    return table.reset_index(drop=True)


def overhead_wide(flops: pd.DataFrame) -> pd.DataFrame:
    """Per model, each (non-zero) enhancer's FLOPs as a % of the model's at each resolution."""
    from .flops import overhead_table

    overhead = overhead_table(flops)
    overhead = overhead[overhead["enhancer_gflops"] > 0]
    overhead = overhead.assign(column=overhead["enhancer"] + " overhead " + overhead["resolution"] + " (%)")
    table = overhead.pivot_table(index="model", columns="column", values="overhead_pct", sort=False, dropna=False)
    table.columns.name = None
    return table.reset_index()


def paper_comparison(flops: pd.DataFrame) -> pd.DataFrame:
    """SyMPIE's Table 1 as far as it could be verified: our counts beside the paper's figures."""
    enhancers = flops_wide(flops, "enhancer")
    paper = pd.DataFrame([(name, res, gflops, source) for name, (res, gflops, source) in SYMPIE_PAPER_FLOPS.items()],
                         columns=["enhancer", "paper resolution", "paper GFLOPs", "paper source"])
    ours = enhancers[["enhancer", *[c for c in enhancers.columns if c.startswith("GFLOPs")]]]
    ours = ours.rename(columns={c: f"ours {c}" for c in ours.columns if c != "enhancer"})
    return ours.merge(paper, on="enhancer", how="left").fillna({"paper resolution": "", "paper source": ""})


def flops_markdown(flops: pd.DataFrame, breakdown: pd.DataFrame | None, command: str = "") -> str:
    """``flops.md``: conventions, the enhancers, the Table 1 comparison, SyMPIE's breakdown and every model."""
    import torch

    enhancers, models = flops_wide(flops, "enhancer"), flops_wide(flops, "model")
    models = models.merge(overhead_wide(flops), on="model", how="left")
    models = models[[c for c in models.columns if c != "note"] + ["note"]]
    cost = {c: "min" for c in models.columns if c.startswith(("GFLOPs", "GMACs", "params"))}
    parts = [
        "# FLOPs leaderboard",
        f"Produced by `{command}` with torch {torch.__version__}." if command else f"torch {torch.__version__}.",
        "Counted with `torch.utils.flop_counter.FlopCounterMode` on meta-device tensors (batch 1, no weights): "
        "convolutions, linear layers, matrix products and attention, **one multiply-add = 2 FLOPs**, "
        "MACs = FLOPs / 2. Element-wise ops, normalisation, pooling, interpolation and activations are not "
        "counted. Parameters: every parameter of the module. Resolutions are width x height.",
        "## Enhancers", markdown_table(enhancers, floatfmt=".3f"),
        "## SyMPIE's Table 1: our counts beside the paper's",
        markdown_table(paper_comparison(flops), floatfmt=".3f"),
        "The paper's Table 1 rows for the compared enhancers could not be retrieved; only the figure stated in "
        "the abstract is shown. Enhancers that this project does not implement have no count of ours.",
    ]
    if breakdown is not None and len(breakdown):
        parts += ["### Where SyMPIE's FLOPs go", markdown_table(breakdown, floatfmt=".3f"),
                  sympie_explanation(breakdown)]
    parts += ["## Models (and each enhancer's overhead in % of the model)",
              markdown_table(models, cost, floatfmt={**{c: ".2f" for c in models.columns}, "params (M)": ".2f"})]
    return "\n\n".join(parts)


def sympie_explanation(breakdown: pd.DataFrame) -> str:
    """Why our Full-HD SyMPIE figure differs from the paper's ~2 GFLOPs."""
    at = breakdown.set_index("resolution")
    if not {"224x224", "1920x1080"} <= set(at.index):
        return ""
    small, full = at.loc["224x224"], at.loc["1920x1080"]
    return (
        f"The paper states about 2 GFLOPs for a Full-HD image; we count {full.total_gflops:.2f} GFLOPs at "
        f"1920x1080. By default our SyMPIE shows the NEM a copy of large images resized to shorter side 224 "
        f"({full.nem_input}), which costs {full.nem_gflops:.2f} GFLOPs, and applies the warp at full resolution "
        f"({full.warp_gflops:.2f} GFLOPs: a 3x3 colour matrix and a 5x5 depthwise convolution per channel, "
        f"2 x (9 + 75) = 168 FLOPs per pixel). The NEM on a 224x224 input costs {small.nem_gflops:.2f} GFLOPs, "
        "which matches the paper's figure: its 2 GFLOPs is consistent with a NEM run on a 224x224 (square) input "
        "and the warp left out or counted as negligible. Without downsizing (`nem_max_side=None`) the NEM would "
        "cost about "
        f"{small.nem_gflops * 1920 * 1080 / 224**2:.0f} GFLOPs at 1920x1080."
    )


def publish_flops(flops: pd.DataFrame, breakdown: pd.DataFrame | None, out: str | Path,
                  command: str = "") -> list[Path]:
    """Write ``flops.csv``, ``flops_overhead.csv`` and ``flops.md`` into ``out``."""
    from .flops import overhead_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [
        _csv(flops, out / "flops.csv"),
        _csv(overhead_table(flops), out / "flops_overhead.csv"),
        _write(out / "flops.md", flops_markdown(flops, breakdown, command)),
    ]
