"""The aggregation layer: CE / mCE against hand-computed figures and AlexNet itself, duplicates, deltas, breakdowns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustbench_sympie import aggregate as agg
from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from robustbench_sympie.errors import DataError
from robustbench_sympie.reference_data import (
    ALEXNET_CLEAN_ERROR,
    ALEXNET_ERRORS_BY_SEVERITY,
    ALEXNET_MEAN_ERRORS,
    alexnet_errors,
)
from robustbench_sympie.results import RESULT_COLUMNS
from robustbench_sympie.summary import format_summary


def make_results(cells: list[tuple[str, str, str, int, int, int]], dataset: str = "imagenet-c",
                 **extra: object) -> pd.DataFrame:
    """Rows (enhancer, model, corruption, severity, n, n_correct_top1) with every results column filled."""
    frame = pd.DataFrame(cells, columns=["enhancer", "model", "corruption", "severity", "n", "n_correct_top1"])
    frame = frame.assign(dataset=dataset, n_correct_top5=frame["n_correct_top1"], n_skipped=0, seconds=1.0,
                         images_per_second=1.0, config_hash="abc", model_weights="default", n_images=frame["n"],
                         seed=0, **extra)
    frame = frame.assign(top1=frame["n_correct_top1"] / frame["n"], top5=frame["n_correct_top5"] / frame["n"])
    return frame[list(RESULT_COLUMNS) + [c for c in frame.columns if c not in RESULT_COLUMNS]]


# ------------------------------------------------------------------------------------------------
# the AlexNet reference
# ------------------------------------------------------------------------------------------------
def test_alexnet_reference_is_complete_and_consistent():
    assert list(ALEXNET_MEAN_ERRORS) == list(BENCHMARK_CORRUPTIONS)
    assert set(ALEXNET_ERRORS_BY_SEVERITY) == set(BENCHMARK_CORRUPTIONS) | set(EXTRA_CORRUPTIONS)
    # the per-severity figures average exactly to the published six-decimal per-corruption means
    for corruption, mean in ALEXNET_MEAN_ERRORS.items():
        assert np.mean(ALEXNET_ERRORS_BY_SEVERITY[corruption]) == pytest.approx(mean, abs=5e-7)
    # the paper's rounded figures (Appendix C, as copied by google-research/robustness_metrics)
    appendix_c = (0.886, 0.894, 0.923, 0.820, 0.826, 0.786, 0.798, 0.867, 0.827, 0.819, 0.565, 0.853, 0.646, 0.718,
                  0.607)
    assert [round(v, 3) for v in ALEXNET_MEAN_ERRORS.values()] == pytest.approx(appendix_c, abs=1e-9)
    assert len(alexnet_errors()) == 19 * 5


def test_alexnet_scores_exactly_100_under_its_own_normalisation():
    """Published normalisation: AlexNet's own errors (and clean error) give CE = relative CE = mCE = 100 %."""
    n = 50_000  # ImageNet validation: every published error is a whole number of images
    reference = alexnet_errors()
    cells = [("identity", "alexnet", c, s, n, round((1 - e) * n)) for c, s, e in reference.itertuples(index=False)]
    cells.append(("identity", "alexnet", "clean", 0, n, round((1 - ALEXNET_CLEAN_ERROR) * n)))
    errors = agg.corruption_errors(make_results(cells))
    assert errors["CE"].to_numpy() == pytest.approx(100.0, abs=1e-9)
    assert errors["relative_CE"].to_numpy() == pytest.approx(100.0, abs=1e-9)
    table = agg.mce(make_results(cells))
    assert list(table.columns[:4]) == ["enhancer", "model", "mCE", "relative_mCE"]
    row = table.iloc[0]
    assert row.mCE == pytest.approx(100.0) and row.relative_mCE == pytest.approx(100.0)
    assert row.complete and row.n_corruptions == 15 and row.n_cells == 75  # extras excluded from mCE


def test_ce_and_mce_match_a_hand_computed_example():
    """Worked example, 100 images per cell, clean error 0.20.

    gaussian_noise errors 0.50 .. 0.90: sum 3.50; AlexNet 5 x 0.886428 = 4.43214
        CE = 3.50 / 4.43214 = 78.9686 %;  relative CE = (3.50 - 5 x 0.20) / (4.43214 - 5 x 0.4348) = 2.50 / 2.25814
        = 110.7106 %
    fog errors 0.30 .. 0.50: sum 2.00; AlexNet 5 x 0.819324 = 4.09662
        CE = 2.00 / 4.09662 = 48.8207 %;  relative CE = 1.00 / 1.92262 = 52.0124 %
    mCE = (78.9686 + 48.8207) / 2 = 63.8947 %;  relative mCE = (110.7106 + 52.0124) / 2 = 81.3615 % (partial)
    """
    correct = {"gaussian_noise": (50, 40, 30, 20, 10), "fog": (70, 65, 60, 55, 50)}
    cells = [("identity", "m", c, s, 100, k) for c, ks in correct.items() for s, k in enumerate(ks, start=1)]
    cells.append(("identity", "m", "clean", 0, 100, 80))
    errors = agg.corruption_errors(make_results(cells)).set_index("corruption")
    assert errors.loc["gaussian_noise", "CE"] == pytest.approx(78.9686, abs=1e-4)
    assert errors.loc["gaussian_noise", "relative_CE"] == pytest.approx(110.7106, abs=1e-4)
    assert errors.loc["fog", "CE"] == pytest.approx(48.8207, abs=1e-4)
    assert errors.loc["fog", "relative_CE"] == pytest.approx(52.0124, abs=1e-4)
    row = agg.mce(make_results(cells)).iloc[0]
    assert row.mCE == pytest.approx(63.8947, abs=1e-4)
    assert row.relative_mCE == pytest.approx(81.3615, abs=1e-4)
    assert row.clean_error_pct == pytest.approx(20.0)
    assert not row.complete and row.n_corruptions == 2 and row.n_cells == 10


def test_partial_severities_normalise_by_the_same_alexnet_severities():
    """Severity 3 only: CE = 0.70 / 0.93554 (AlexNet's gaussian_noise error at severity 3) = 74.8231 %."""
    cells = [("identity", "m", "gaussian_noise", 3, 100, 30)]
    errors = agg.corruption_errors(make_results(cells)).iloc[0]
    assert errors["CE"] == pytest.approx(74.8231, abs=1e-4)
    assert np.isnan(errors["relative_CE"])  # no clean row: relative CE is undefined, not zero
    assert errors.severities == "3"


# ------------------------------------------------------------------------------------------------
# duplicates
# ------------------------------------------------------------------------------------------------
def test_identical_duplicates_are_merged_and_reported_never_double_counted(tmp_path: Path):
    cells = [("identity", "m", "clean", 0, 10, 8), ("identity", "m", "fog", 3, 10, 6)]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    make_results(cells).to_csv(first, index=False)
    make_results(cells[1:]).assign(seconds=9.0).to_csv(second, index=False)  # same numbers, other timing
    loaded = agg.load_results([first, second])
    assert len(loaded.frame) == 2 and loaded.n_dropped == 1
    assert list(loaded.duplicates["source"]) == [str(first), str(second)]
    assert not loaded.duplicates["conflict"].any()
    fog = agg.per_corruption(loaded.frame).set_index("corruption").loc["fog"]
    assert fog.n == 10 and fog.top1 == pytest.approx(0.6)


def test_conflicting_duplicates_raise_unless_a_copy_is_chosen():
    cells = [("identity", "m", "fog", 3, 10, 6)]
    frame = agg.concat_results({"a": make_results(cells), "b": make_results([("identity", "m", "fog", 3, 10, 7)])})
    with pytest.raises(DataError, match="identity/m/imagenet-c/fog/3"):
        agg.deduplicate(frame)
    assert agg.find_duplicates(frame)["conflict"].all()
    assert agg.deduplicate(frame, "first").frame["n_correct_top1"].tolist() == [6]
    assert agg.deduplicate(frame, "last").frame["n_correct_top1"].tolist() == [7]
    # a different configuration is a conflict too, even with equal counts
    other_config = agg.concat_results({"a": make_results(cells), "b": make_results(cells).assign(config_hash="x")})
    with pytest.raises(DataError):
        agg.deduplicate(other_config)


@pytest.mark.parametrize("column,value,got", [
    ("n_correct_top1", "abc", "'abc'"), ("n_correct_top1", 13, "13"), ("n_correct_top5", -1, "-1"),
    ("severity", "x", "'x'"), ("n", None, "nan"), ("n", 2.5, "2.5"),
])
def test_impossible_counts_name_the_file_line_cell_and_column(tmp_path: Path, column, value, got):
    frame = make_results([("identity", "m", "clean", 0, 10, 8), ("identity", "m", "fog", 3, 10, 6)])
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = value
    frame.to_csv(tmp_path / "bad.csv", index=False)
    where = r"bad.csv, line 3 \(cell identity/m/imagenet-c/fog/[^)]*\)"
    with pytest.raises(DataError, match=f"{where}, column {column}: expected a whole number .*, got {got}$"):
        agg.load_results(tmp_path / "bad.csv")


def test_one_path_or_a_run_folder_loads_like_a_list(tmp_path: Path):
    make_results([("identity", "m", "fog", 3, 10, 6)]).to_csv(tmp_path / "results.csv", index=False)
    for one in (str(tmp_path), tmp_path, str(tmp_path / "results.csv")):
        assert agg.load_results(one).frame["n_correct_top1"].tolist() == [6]


def test_bad_input_files_give_clear_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        agg.load_results([tmp_path / "missing.csv"])
    with pytest.raises(DataError, match=r"empty.results\.csv does not exist"):
        (tmp_path / "empty").mkdir()
        agg.load_results(tmp_path / "empty")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="lacks the results columns"):
        agg.load_results([tmp_path / "bad.csv"])


# ------------------------------------------------------------------------------------------------
# pooling, deltas, breakdowns
# ------------------------------------------------------------------------------------------------
def test_pooling_weighs_cells_by_images():
    cells = [("identity", "m", "fog", 1, 100, 90), ("identity", "m", "fog", 2, 300, 150),
             ("identity", "m", "clean", 0, 100, 95)]
    fog = agg.per_corruption(make_results(cells)).set_index("corruption").loc["fog"]
    assert fog.top1 == pytest.approx(240 / 400) and fog.severities == "1,2"
    severities = agg.per_severity(make_results(cells)).set_index("severity")
    assert severities.loc[0, "top1"] == pytest.approx(0.95) and severities.loc[2, "n"] == 300


def test_wilson_and_newcombe_match_newcombe_1998():
    low, high = agg.wilson_interval(81, 263)
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    low, high = agg.newcombe_interval(56, 70, 48, 80)  # Newcombe (1998), Stat. Med. 17:873, example (a)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_deltas_pair_enhancer_and_identity_on_the_same_model_and_data():
    cells = [("identity", "m", "fog", 3, 200, 100), ("sympie", "m", "fog", 3, 200, 130),
             ("identity", "m", "clean", 0, 200, 160), ("sympie", "m", "clean", 0, 200, 158),
             ("identity", "other", "fog", 3, 200, 50)]
    frame = make_results(cells)
    # a sympie cell computed on different images (n_images) must not be paired with identity
    frame = pd.concat([frame, make_results([("sympie", "m", "fog", 5, 50, 20)]).assign(n_images=50)])
    frame = pd.concat([frame, make_results([("identity", "m", "fog", 5, 200, 40)])])
    deltas = agg.deltas_vs_baseline(frame).set_index(["corruption", "severity"])
    assert list(deltas.index) == [("fog", 3), ("clean", 0)]
    fog = deltas.loc[("fog", 3)]
    assert fog.delta_top1_pts == pytest.approx(15.0) and fog.delta_top1_rel_pct == pytest.approx(30.0)
    assert fog.n == fog.n_baseline == 200 and fog.significant
    assert fog.ci_low_pts < 15.0 < fog.ci_high_pts
    assert not deltas.loc[("clean", 0)].significant
    overall = agg.deltas_vs_baseline(frame, by=(), corrupted_only=True)
    assert len(overall) == 1 and overall.iloc[0].delta_top1_pts == pytest.approx(15.0)


def test_mixed_breakdown_reads_the_mixed_k_cells():
    """ImageNet-C-Mixed rows as the runner writes them: one cell ``mixed_<k>`` (severity 0) per corruption count."""
    cells = [("identity", "m", "clean", 0, 100, 80), ("identity", "m", "mixed_1", 0, 100, 70),
             ("identity", "m", "mixed_2", 0, 100, 50), ("sympie", "m", "mixed_1", 0, 100, 75),
             ("sympie", "m", "mixed_2", 0, 100, 60)]
    results = make_results(cells, dataset="imagenet-c-mixed")
    table = agg.mixed_breakdown(results).set_index(["enhancer", "n_corruptions"])
    assert list(table.index) == [("identity", 1), ("identity", 2), ("sympie", 1), ("sympie", 2)]
    assert table.loc[("sympie", 2), "top1"] == pytest.approx(0.6)
    deltas = agg.deltas_vs_baseline(agg.with_mixed_counts(results), by=("n_corruptions",))
    assert deltas.set_index("n_corruptions").loc[2, "delta_top1_pts"] == pytest.approx(10.0)
    assert agg.mce(results).empty  # no AlexNet reference for mixed cells


def test_breakdown_columns_are_part_of_the_cell_key():
    """A results table carrying the breakdown in its own column (VizWiz quality flags: dataset not built yet)."""
    cells = [("identity", "m", "clean", 0, 100, 70), ("identity", "m", "clean", 0, 100, 50),
             ("sympie", "m", "clean", 0, 100, 75), ("sympie", "m", "clean", 0, 100, 60)]
    vizwiz = make_results(cells, dataset="vizwiz", quality_flag=["BLR", "DRK", "BLR", "DRK"])
    loaded = agg.deduplicate(agg.concat_results({"vizwiz": vizwiz}))
    assert len(loaded.frame) == 4 and loaded.duplicates.empty
    table = agg.vizwiz_breakdown(loaded.frame).set_index(["enhancer", "quality_flag"])
    assert table.loc[("identity", "DRK"), "top1"] == pytest.approx(0.5)
    deltas = agg.deltas_vs_baseline(loaded.frame, by=("quality_flag",)).set_index("quality_flag")
    assert deltas.loc["DRK", "delta_top1_pts"] == pytest.approx(10.0)
    with pytest.raises(DataError, match="quality_flag"):
        agg.vizwiz_breakdown(vizwiz.drop(columns="quality_flag"))


def test_summary_uses_the_aggregation_and_reports_mce():
    cells = [("identity", "efficientnet_lite0", "clean", 0, 10, 9), ("identity", "efficientnet_lite0", "fog", 3, 10, 6),
             ("identity", "efficientnet_lite0", "speckle_noise", 3, 10, 4)]
    text = format_summary(make_results(cells))
    assert text.startswith("top-1 accuracy (%), 10 images per cell")
    assert "identity @ efficientnet_lite0" in text and "fog" in text and "speckle_noise" in text
    assert "mean (corrupted)" in text and "50.0" in text
    # fog at severity 3: (1 - 0.6) / 0.84378 = 47.41 %; speckle_noise is not a benchmark corruption
    assert "mCE 47.4 %" in text and "partial: 1/15 corruptions, 1/75 cells" in text


def test_per_severity_keeps_mixed_cells_out_of_clean():
    import pandas as pd

    from robustbench_sympie.aggregate import per_severity

    rows = [("clean", 0, 10, 9), ("mixed_1", 0, 10, 5), ("fog", 3, 10, 6)]
    frame = pd.DataFrame([{"enhancer": "identity", "model": "m", "dataset": "d", "corruption": c, "severity": s,
                           "n": n, "n_correct_top1": k, "n_correct_top5": k} for c, s, n, k in rows])
    table = per_severity(frame).set_index("severity")
    assert table.loc[0, "n"] == 10 and table.loc[0, "top1"] == 0.9 and table.loc[3, "top1"] == 0.6


def test_vizwiz_breakdown_reads_the_flag_cells():
    cells = [("identity", "m", "all", 0, 10, 5), ("identity", "m", "flag_BLR", 0, 4, 1),
             ("identity", "m", "flag_DRK", 0, 5, 4)]
    table = agg.vizwiz_breakdown(make_results(cells, dataset="vizwiz")).set_index("quality_flag")
    assert table.loc["BLR", "top1"] == pytest.approx(0.25) and table.loc["DRK", "top1"] == pytest.approx(0.8)
    assert "all" not in table.index


def test_run_summary_keeps_image_sets_apart_and_states_the_image_counts():
    from robustbench_sympie.summary import format_summary

    two = make_results([("identity", "m", "clean", 0, 2, 1)], image_set="aaaaaaaaaa")
    three = make_results([("identity", "m", "contrast", 3, 3, 2)], image_set="bbbbbbbbbb")
    text = format_summary(pd.concat([two, three], ignore_index=True))
    assert text.startswith("top-1 accuracy (%), 2 to 3 images per cell")
    assert "imagenet-c [images aaaaaaaaaa]" in text and "imagenet-c [images bbbbbbbbbb]" in text
    assert format_summary(two).startswith("top-1 accuracy (%), 2 images per cell")
