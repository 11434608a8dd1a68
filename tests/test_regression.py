"""check_regression: fails on an injected accuracy drop, passes on a rerun, errors on missing cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_sympie.cli.check_regression import main as check_main
from robustbench_sympie.models import Classifier, register_model
from robustbench_sympie.models.efficientnet_lite import build_efficientnet_lite
from robustbench_sympie.regression import RegressionError, assert_no_regression, compare_results
from robustbench_sympie.runner import SuiteConfig, run_suite


@register_model("test_lite0_wrong_normalisation", overwrite=True)
def lite0_with_imagenet_normalisation(weights=None) -> Classifier:
    """efficientnet_lite0 with the ImageNet mean/std instead of its own: a silent preprocessing bug."""
    model = build_efficientnet_lite("efficientnet_lite0")
    model.mean.copy_(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    model.std.copy_(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    return model


@register_model("test_lite0_corrupted_weight", overwrite=True)
def lite0_with_a_corrupted_weight(weights=None) -> Classifier:
    model = build_efficientnet_lite("efficientnet_lite0")
    with torch.no_grad():  # noise on the classifier layer, as a bad checkpoint conversion would leave
        model.net._fc.weight.add_(torch.randn(model.net._fc.weight.shape, generator=torch.Generator().manual_seed(0))
                                  * model.net._fc.weight.std() * 2)
    return model


def _run(root: Path, out: Path, model: str) -> pd.DataFrame:
    config = SuiteConfig(enhancers=["identity"], models=[model], data_root=root,
                         corruptions="gaussian_noise,defocus_blur", severities=[3], limit=32, batch_size=32,
                         workers=0, device="cpu", out=out, progress=False)
    return run_suite(config).assign(model="efficientnet_lite0")  # same cell keys as the golden run


@pytest.fixture(scope="module")
def golden(tmp_path_factory, demo_root: Path) -> pd.DataFrame:
    return _run(demo_root, tmp_path_factory.mktemp("golden"), "efficientnet_lite0")


def test_rerun_passes_and_injected_bugs_fail(golden: pd.DataFrame, demo_root: Path, tmp_path: Path):
    rerun = _run(demo_root, tmp_path / "rerun", "efficientnet_lite0")
    report = assert_no_regression(rerun, golden, tolerance_pts=0.0)
    assert report.passed and len(report.table) == 2 and (report.table.delta_pts == 0).all()
    for bug in ("test_lite0_wrong_normalisation", "test_lite0_corrupted_weight"):
        broken = _run(demo_root, tmp_path / bug, bug)
        with pytest.raises(RegressionError, match=r"FAIL: [12] regression"):
            assert_no_regression(broken, golden, tolerance_pts=3.0)


def test_improvements_are_reported_not_failed(golden: pd.DataFrame):
    better = golden.copy()
    better.loc[better.corruption == "defocus_blur", "n_correct_top1"] += 3
    report = compare_results(better, golden, tolerance_pts=0.0)
    assert report.passed and len(report.improvements) == 1


def test_binomial_option_needs_a_significant_drop(golden: pd.DataFrame):
    worse = golden.copy()
    worse["n_correct_top1"] -= 1  # one image of 32: over a 3-point tolerance, far from significant
    assert not compare_results(worse, golden, tolerance_pts=3.0).passed
    assert compare_results(worse, golden, tolerance_pts=3.0, alpha=0.01).passed


@pytest.mark.parametrize("flags", [["--tolerance", "nan"], ["--tolerance", "-1"], ["--tolerance", "x"],
                                   ["--alpha", "0"], ["--alpha", "2"]])
def test_meaningless_tolerance_or_alpha_is_refused(golden: pd.DataFrame, tmp_path: Path, capsys, flags):
    golden.to_csv(tmp_path / "golden.csv", index=False)
    with pytest.raises(SystemExit) as exit_info:
        check_main([str(tmp_path / "golden.csv"), "--baseline", str(tmp_path / "golden.csv"), *flags])
    assert exit_info.value.code == 2 and f"argument {flags[0]}: expected" in capsys.readouterr().err
    with pytest.raises(ValueError):
        compare_results(golden, golden, tolerance_pts=float("nan"))


def test_missing_cells_are_an_error(golden: pd.DataFrame, tmp_path: Path, capsys):
    golden_path, new_path = tmp_path / "golden.csv", tmp_path / "new.csv"
    golden.to_csv(golden_path, index=False)
    golden[golden.corruption == "gaussian_noise"].to_csv(new_path, index=False)
    assert check_main([str(new_path), "--baseline", str(golden_path)]) == 2
    assert "missing in the new results" in capsys.readouterr().out
    with pytest.raises(RegressionError, match="missing in the new results"):
        assert_no_regression(new_path, golden_path)
    golden.to_csv(new_path, index=False)
    assert check_main([str(new_path), "--baseline", str(golden_path)]) == 0
    assert check_main([str(tmp_path / "nope.csv"), "--baseline", str(golden_path)]) == 2


def test_pytest_fixture_is_available(accuracy_regression, golden: pd.DataFrame):
    assert accuracy_regression(golden, golden).passed


def test_a_cell_with_no_images_is_a_regression(golden: pd.DataFrame):
    empty = golden.copy()
    empty.loc[empty.index[0], ["n", "n_correct_top1"]] = 0
    report = compare_results(empty, golden)
    assert not report.passed and len(report.regressions) == 1
