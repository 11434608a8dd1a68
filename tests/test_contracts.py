"""Issue-11 contracts: the dataset protocol, declared enhancer hooks, per-enhancer arguments, records, paired stats."""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import robustbench_sympie as rbs
from robustbench_sympie.cli.run_suite import main as run_suite_main
from robustbench_sympie.datasets import EvalDataset, create_dataset
from robustbench_sympie.enhancers.spec import EnhancerSpec, parse_enhancer_specs
from robustbench_sympie.errors import SuiteError
from robustbench_sympie.records import load_records
from robustbench_sympie.runner import SuiteConfig, build_pairs, run_suite
from robustbench_sympie.stats import cluster_bootstrap_interval, mcnemar_exact, paired_deltas


def test_every_builtin_dataset_factory_returns_the_protocol(demo_root: Path):
    for name in ("imagenet-c", "imagenet-c-mixed", "colour-warps"):
        dataset = create_dataset(name, data_root=demo_root, corruptions="clean,gaussian_noise", limit=4)
        assert isinstance(dataset, EvalDataset)
        cell = dataset.cells()[-1]
        sample = dataset.cell_dataset(cell)[0]
        assert sample.image.dtype.is_floating_point is False and sample.image_id and not sample.error
        assert isinstance(dataset.breakdown(cell), dict)


def test_mixed_breakdown_comes_from_the_dataset(demo_root: Path):
    dataset = create_dataset("imagenet-c-mixed", data_root=demo_root, corruptions="clean,gaussian_noise", limit=6)
    by_cell = {c.corruption: dataset.breakdown(c) for c in dataset.cells()}
    assert by_cell["clean"] == {}
    assert all(v == {"n_corruptions": int(k.split("_")[1])} for k, v in by_cell.items() if k != "clean")


def test_enhancer_specs_parse_names_and_typed_arguments():
    specs = parse_enhancer_specs("identity, sympie:weights=C:/w.pth:nem_size=128,tv_denoise:weight=0.2")
    assert specs == [EnhancerSpec("identity"), EnhancerSpec("sympie", {"weights": "C:/w.pth", "nem_size": "128"}),
                     EnhancerSpec("tv_denoise", {"weight": "0.2"})]
    with pytest.raises(SuiteError, match="names no enhancer"):
        parse_enhancer_specs(" , ")
    with pytest.raises(SuiteError, match="expected NAME:key=value, got 'weight'"):  # never silently dropped
        parse_enhancer_specs("tv_denoise:weight")
    with pytest.raises(SuiteError, match="lists 'identity' twice"):  # never evaluated twice into one results file
        parse_enhancer_specs("identity,sympie,identity")
    assert len(parse_enhancer_specs("tv_denoise:weight=0.1,tv_denoise:weight=0.2")) == 2
    from robustbench_sympie.enhancers import ENHANCERS
    from robustbench_sympie.enhancers.spec import enhancer_kwargs

    assert enhancer_kwargs(specs[1], ENHANCERS.get("sympie")) == {"weights": "C:/w.pth", "nem_size": 128}
    with pytest.raises(SuiteError, match="takes no argument 'wieght'.*accepts: .*weight"):
        enhancer_kwargs(EnhancerSpec("tv_denoise", {"wieght": "1"}), ENHANCERS.get("tv_denoise"))
    with pytest.raises(SuiteError, match="expected float"):
        enhancer_kwargs(EnhancerSpec("tv_denoise", {"weight": "strong"}), ENHANCERS.get("tv_denoise"))


def test_readme_command_with_several_enhancers_and_enhancer_weights(few_images: Path, tmp_path: Path):
    """`--enhancer identity,sympie --enhancer-weights X` gives X to sympie only (identity takes no weights)."""
    weights = Path(rbs.__file__).parent / "weights" / "sympie_efficientnet_lite0.safetensors"
    out = tmp_path / "out"
    argv = ["--enhancer", "identity,sympie", "--enhancer-weights", str(weights), "--model", "tiny_test_model",
            "--data-root", str(few_images), "--corruptions", "clean", "--workers", "0", "--out", str(out),
            "--no-progress"]
    assert run_suite_main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["enhancer"]) == {"identity", "sympie"}
    assert results.loc[results["enhancer"] == "sympie", "enhancer_weights"].str.contains(weights.name).all()
    per_enhancer = tmp_path / "per"
    argv = ["--enhancer", f"identity,sympie:weights={weights}", "--model", "tiny_test_model", "--data-root",
            str(few_images), "--corruptions", "clean", "--workers", "0", "--out", str(per_enhancer), "--no-progress"]
    assert run_suite_main(argv) == 0
    again = pd.read_csv(per_enhancer / "results.csv")
    assert set(again["enhancer"]) == {"identity", "sympie"}
    assert again.set_index("enhancer")["n_correct_top1"].equals(results.set_index("enhancer")["n_correct_top1"])


def test_enhancer_weights_for_no_weight_taking_enhancer_is_an_error(few_images: Path, tmp_path: Path):
    config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], data_root=few_images,
                         enhancer_weights="x.pth", out=tmp_path, progress=False)
    with pytest.raises(SuiteError, match="none of the enhancers identity takes weights"):
        build_pairs(config, __import__("torch").device("cpu"))


def test_model_independent_enhancers_are_built_once_and_shared(few_images: Path, tmp_path: Path):
    import torch

    config = SuiteConfig(enhancers=["identity", "sympie"], models=["tiny_test_model", "efficientnet_lite0"],
                         data_root=few_images, out=tmp_path, progress=False, allow_untrained=True)
    pairs = build_pairs(config, torch.device("cpu"))
    identity = [p.enhancer for p in pairs if p.enhancer_name == "identity"]
    sympie = [p.enhancer for p in pairs if p.enhancer_name.startswith("sympie")]
    assert identity[0] is identity[1]  # no downstream_model: one instance
    assert sympie[0] is not sympie[1]  # depends_on_model: one per model


def test_records_are_written_and_match_the_counts(few_images: Path, tmp_path: Path):
    config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], data_root=few_images,
                         corruptions="clean,gaussian_noise", severities=[2], batch_size=4, workers=0,
                         device="cpu", out=tmp_path, progress=False)
    results = run_suite(config)
    records = load_records(tmp_path)
    assert len(records) == results["n"].sum()
    counts = records.groupby(["corruption", "severity"])["correct_top1"].sum()
    for row in results.itertuples():
        assert counts[(row.corruption, row.severity)] == row.n_correct_top1
    assert (records["top1"] >= 0).all() and records["image_id"].str.endswith(".JPEG").all()
    assert not run_suite(SuiteConfig(**{**config.__dict__, "records": False, "out": tmp_path / "none"})).empty
    assert not (tmp_path / "none" / "records").exists()


def test_mcnemar_and_bootstrap_against_hand_computation():
    from scipy.stats import binom

    # 7 wins vs 2 losses: two-sided exact p = 2 * P(X <= 2 | n=9, 1/2)
    assert mcnemar_exact(7, 2) == pytest.approx(2 * binom.cdf(2, 9, 0.5))
    assert mcnemar_exact(0, 0) == 1.0
    low, high = cluster_bootstrap_interval(np.array([1, 0, 0, 1] * 25), np.ones(100))
    assert low < 0.5 < high and high - low < 0.25
    # a constant difference has a degenerate interval
    assert cluster_bootstrap_interval(np.ones(10), np.ones(10)) == (1.0, 1.0)


def test_paired_deltas_pair_on_images():
    rows = []
    for image in range(10):
        for enhancer, correct in (("identity", image < 5), ("better", image < 8)):
            rows.append({"enhancer": enhancer, "model": "m", "dataset": "d", "corruption": "fog", "severity": 3,
                         "image_id": f"img{image}", "correct_top1": correct, "correct_top5": True})
    table = paired_deltas(pd.DataFrame(rows))
    row = table.iloc[0]
    assert (row["wins"], row["losses"], row["n"]) == (3, 0, 10)
    assert row["delta_top1_pts"] == pytest.approx(30.0) and row["p_mcnemar"] == pytest.approx(0.25)
    assert "McNemar" in row["method"]


def test_public_api_exports_and_return_types():
    for name in ("EvalDataset", "SuiteError", "DataError", "WeightsNotFoundError", "load_results", "load_records",
                 "mce", "paired_deltas", "create_dataset", "create_enhancer", "create_model"):
        assert getattr(rbs, name) is not None, name
    for factory in (rbs.create_dataset, rbs.create_enhancer, rbs.create_model):
        assert typing.get_type_hints(factory).get("return") not in (None, typing.Any), factory.__name__
