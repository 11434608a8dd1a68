"""Publishing: markdown against golden files, the CSVs and heatmaps, the CLI, and the FLOPs counter.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_publish.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_sympie import aggregate as agg
from robustbench_sympie import publish
from robustbench_sympie.cli.publish_leaderboard import main
from robustbench_sympie.flops import count_flops, default_flops_models, flops_table, overhead_table, sympie_breakdown
from robustbench_sympie.results import RESULT_COLUMNS

GOLDEN = Path(__file__).parent / "golden"


def small_results() -> pd.DataFrame:
    """identity and sympie on one model: clean, 2 corruptions x 2 severities, 200 images per cell."""
    correct = {  # corruption, severity -> (identity, sympie) correct top-1
        ("clean", 0): (160, 158), ("gaussian_noise", 1): (120, 131), ("gaussian_noise", 2): (90, 111),
        ("fog", 1): (140, 138), ("fog", 2): (110, 118),
    }
    rows = [(enhancer, "resnet50", corruption, severity, 200, pair[i])
            for (corruption, severity), pair in correct.items() for i, enhancer in enumerate(("identity", "sympie"))]
    frame = pd.DataFrame(rows, columns=["enhancer", "model", "corruption", "severity", "n", "n_correct_top1"])
    frame = frame.assign(dataset="imagenet-c", n_correct_top5=frame["n_correct_top1"] + 30, n_skipped=0,
                         seconds=1.0, images_per_second=200.0, config_hash="h", model_weights="default",
                         n_images=200, seed=0)
    frame = frame.assign(top1=frame["n_correct_top1"] / 200, top5=frame["n_correct_top5"] / 200)
    return frame[list(RESULT_COLUMNS) + [c for c in frame.columns if c not in RESULT_COLUMNS]]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file (UPDATE_GOLDEN=1)"


@pytest.fixture
def loaded() -> agg.LoadedResults:
    return agg.deduplicate(agg.concat_results({"results.csv": small_results()}))


# ------------------------------------------------------------------------------------------------
# markdown
# ------------------------------------------------------------------------------------------------
def test_markdown_bolds_the_best_value_of_each_column_as_displayed():
    table = pd.DataFrame({"model": ["a", "b", "c"], "top-1 (%)": [70.04, 70.01, 65.0], "mCE (%)": [50.0, 40.0, None],
                          "same": [1.0, 1.0, 1.0]})
    text = publish.markdown_table(table, {"top-1 (%)": "max", "mCE (%)": "min", "same": "max"})
    lines = text.splitlines()
    assert lines[0].startswith("| model") and "top-1 (%)" in lines[0]
    assert "**70.0**" in lines[2] and "**70.0**" in lines[3] and "65.0" in lines[4]  # tie once rounded
    assert "**40.0**" in lines[3] and "–" in lines[4]
    assert "**1.0**" not in text  # nothing is "best" when every value is equal


def test_accuracy_markdown_matches_golden(loaded):
    check_golden("accuracy.md", publish.accuracy_markdown(loaded.frame) + "\n")


def test_mce_markdown_matches_golden(loaded):
    check_golden("mce.md", publish.mce_markdown(agg.mce(loaded.frame)) + "\n")


def test_deltas_markdown_matches_golden(loaded):
    results = loaded.frame
    overview = publish.delta_overview(results)
    by_corruption = publish.delta_by_corruption(agg.deltas_vs_baseline(results, ("corruption",)))
    check_golden("deltas.md", publish.deltas_markdown(overview, by_corruption, "identity", 0.95) + "\n")


# ------------------------------------------------------------------------------------------------
# the published folder and the command
# ------------------------------------------------------------------------------------------------
def test_publish_writes_tables_csvs_and_heatmap(loaded, tmp_path: Path):
    paths = publish.publish(loaded, tmp_path, command="publish_leaderboard results.csv --out x")
    names = {p.name for p in paths}
    assert {"accuracy.md", "mce.md", "deltas.md", "mce.csv", "cells.csv", "deltas_cells.csv",
            "README.md", "heatmap_sympie_resnet50_imagenet-c.png"} <= names
    mce = pd.read_csv(tmp_path / "mce.csv")
    assert list(mce.columns[:4]) == ["enhancer", "model", "mCE", "relative_mCE"]
    assert (tmp_path / "heatmap_sympie_resnet50_imagenet-c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "publish_leaderboard results.csv --out x" in (tmp_path / "README.md").read_text()
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert cells["top1_pct"].max() == pytest.approx(80.0)


def test_publish_breaks_imagenet_c_mixed_down_by_corruptions_per_image(tmp_path: Path):
    mixed = small_results().replace({"corruption": {"gaussian_noise": "mixed_1", "fog": "mixed_2"}})
    mixed = mixed[mixed["severity"] < 2].assign(severity=0, dataset="imagenet-c-mixed")
    publish.publish(agg.deduplicate(agg.concat_results({"mixed.csv": mixed})), tmp_path)
    lines = (tmp_path / "breakdown_n_corruptions.md").read_text().splitlines()
    assert "n_corruptions=1 (%)" in lines[2] and "n_corruptions=2 (%)" in lines[2] and "all (%)" in lines[2]
    assert "| identity" in lines[4] and "60.0" in lines[4] and "**70.0**" in lines[4]  # 120/200, 140/200
    assert "| sympie" in lines[5] and "**65.5**" in lines[5] and " 69.0" in lines[5]  # 131/200, 138/200


def test_cli_publishes_merges_duplicates_and_reports_bad_files(tmp_path: Path, capsys):
    results = tmp_path / "results.csv"
    small_results().to_csv(results, index=False)
    out = tmp_path / "out"
    assert main([str(results), str(results), "--out", str(out)]) == 0  # the same file twice: merged, not doubled
    assert "10 duplicated cell row(s) merged" in capsys.readouterr().err
    assert (out / "duplicates.csv").exists()
    assert pd.read_csv(out / "cells.csv")["n"].max() == 200

    (tmp_path / "junk.csv").write_text("not,a\nresults,file\n")
    for bad, message in ((tmp_path / "missing.csv", "does not exist"), (tmp_path / "junk.csv", "lacks the results")):
        assert main([str(bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err

    conflicting = tmp_path / "conflict.csv"
    small_results().assign(n_correct_top1=1).to_csv(conflicting, index=False)
    assert main([str(results), str(conflicting), "--out", str(out)]) == 2
    assert "--on-duplicate" in capsys.readouterr().err
    assert main([str(results), str(conflicting), "--out", str(out), "--on-duplicate", "last"]) == 0

    assert main([str(results), "--out", str(out), "--baseline", "identiy"]) == 2  # a typo, not an empty deltas.md
    assert "Did you mean 'identity'?" in capsys.readouterr().err
    impossible = tmp_path / "impossible.csv"
    small_results().assign(n_correct_top1=lambda f: f["n"] + 1).to_csv(impossible, index=False)
    assert main([str(impossible), "--out", str(out)]) == 2  # never published as a top-1 above 100 %
    assert "between 0 and the row's n" in capsys.readouterr().err
    header_only = tmp_path / "header.csv"
    small_results().iloc[:0].to_csv(header_only, index=False)
    assert main([str(header_only), "--out", str(tmp_path / "empty")]) == 2
    assert "no result rows to publish" in capsys.readouterr().err


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from robustbench_sympie.cli.publish_leaderboard import build_parser; "
            "build_parser().format_help(); print(any(m in sys.modules for m in ('torch', 'pandas', 'matplotlib')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------
# FLOPs
# ------------------------------------------------------------------------------------------------
def test_flop_counter_convention_is_two_flops_per_multiply_add():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False).to("meta")
    flops, _ = count_flops(conv, 16, 16)
    assert flops == 2 * (16 * 16 * 8 * 3 * 3 * 3)


def test_sympie_flops_breakdown_by_hand():
    breakdown = sympie_breakdown().set_index("resolution")
    full = breakdown.loc["1920x1080"]
    # the warp at full resolution: 3x3 colour matrix (9 MACs) + 5x5 depthwise per channel (75 MACs) per pixel
    assert full.warp_gflops == pytest.approx(2 * (9 + 75) * 1920 * 1080 / 1e9)
    assert full.nem_input == "398x224"
    assert breakdown.loc["224x224", "nem_gflops"] == pytest.approx(1.971, abs=1e-3)


def test_flops_table_overheads_and_cli(tmp_path: Path):
    table = flops_table(models=["resnet18"], resolutions=("224x224",))
    resnet = table[table["name"] == "resnet18"].iloc[0]
    assert resnet.gmacs == pytest.approx(1.814, abs=1e-3) and resnet.params == 11_689_512  # torchvision's figures
    assert resnet.gflops == pytest.approx(2 * resnet.gmacs)
    overhead = overhead_table(table).set_index("enhancer")
    sympie = table.set_index("name").loc["sympie", "gflops"]
    assert overhead.loc["sympie", "overhead_pct"] == pytest.approx(100 * sympie / resnet.gflops)
    assert overhead.loc["identity", "overhead_pct"] == 0

    assert main(["--flops", "--flops-models", "resnet18", "--out", str(tmp_path)]) == 0
    flops = pd.read_csv(tmp_path / "flops.csv")
    assert list(flops.columns[:6]) == ["name", "kind", "resolution", "gflops", "gmacs", "params"]
    assert set(flops["resolution"]) == {"224x224", "1920x1080"}
    text = (tmp_path / "flops.md").read_text()
    assert "one multiply-add = 2 FLOPs" in text and "2GFLOPs" in text and "resnet18" in text
    assert main(["--flops", "--flops-models", "resnet5O", "--out", str(tmp_path)]) == 2


def test_flops_table_does_not_depend_on_installed_extras(monkeypatch):
    """Optional extras' models are counted without their weights; a per-image library enhancer whose package is
    missing keeps its cost note (so the published table is the same whatever is installed)."""
    import baselines.classical

    assert {"efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite0", "resnet50"} <= set(default_flops_models())
    lite1 = flops_table(enhancers=[], models=["efficientnet_lite1"], resolutions=("224x224",)).iloc[0]
    assert lite1.params == 5_416_680 and lite1.gflops == pytest.approx(1.00, abs=0.01)

    def missing_bm3d(self, sigma=None):
        raise baselines.classical.MissingExtraError("enhancer 'bm3d_denoise' needs the optional 'bm3d' package")

    monkeypatch.setattr(baselines.classical.BM3DDenoise, "__init__", missing_bm3d)
    bm3d = flops_table(enhancers=["bm3d_denoise"], models=[], resolutions=("224x224",)).iloc[0]
    assert bm3d.note == baselines.classical.BM3DDenoise.cost_note and bm3d.params == 0
    assert flops_table(enhancers=["no_such_enhancer"], models=[], resolutions=("224x224",)).note.iloc[0] \
        .startswith("not built: UnknownNameError")


def test_meta_counting_builds_no_real_weights():
    from robustbench_sympie.flops import build_model_architecture

    net = build_model_architecture("efficientnet_lite0")
    assert all(p.device == torch.device("meta") for p in net.parameters())


def test_heatmap_grid_orders_severities_and_corruptions_whatever_the_row_order():
    from robustbench_sympie.publish import heatmap_grid

    rows = [("contrast", 3, 1.0), ("gaussian_noise", 3, 2.0), ("contrast", 1, 3.0), ("gaussian_noise", 1, 4.0)]
    grid = heatmap_grid(pd.DataFrame(rows, columns=["corruption", "severity", "delta_top1_pts"]))
    assert list(grid.columns) == [1, 3] and list(grid.index) == ["gaussian_noise", "contrast"]
    assert grid.loc["contrast", 1] == 3.0


@pytest.mark.parametrize("folder", ["baselines_efficientnet_lite0", "suites_efficientnet_lite0"])
def test_shipped_results_republish_every_table_identically(folder: str, tmp_path: Path):
    """A published folder that ships its raw results is reproduced byte for byte from them by the current
    aggregation code (every CSV and markdown table; README, results and heatmaps aside)."""
    published = Path(__file__).resolve().parents[1] / "leaderboards" / folder
    results = sorted(published.glob("results*.csv"))
    assert main([*map(str, results), "--out", str(tmp_path)]) == 0
    tables = sorted(p.name for p in published.iterdir()
                    if p.suffix in (".csv", ".md") and p.name != "README.md" and not p.name.startswith("results"))
    assert len(tables) >= 10
    differ = [name for name in tables if (tmp_path / name).read_bytes() != (published / name).read_bytes()]
    assert not differ, f"{folder}: re-publish with the command in leaderboards/README.md; differing: {differ}"
