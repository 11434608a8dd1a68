"""benchmarks/fidelity_redraws.py: its pooled statistics and a small run that resumes from its cache."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def redraws(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other as scripts do
    return importlib.import_module("fidelity_redraws")


def _flags(gen: np.random.Generator, n: int, seeds: int, p: float) -> np.ndarray:
    return gen.random((n, seeds)) < p


def test_one_seed_pools_to_the_single_draw_statistics(redraws):
    fidelity = importlib.import_module("corruption_fidelity")
    gen = np.random.default_rng(3)
    ref, tor = _flags(gen, 300, 1, 0.6), _flags(gen, 300, 1, 0.5)
    cell = redraws.RedrawCell("snow", 5, [0], ref, tor)
    assert cell.pooled() == pytest.approx(fidelity.paired_difference(tor[:, 0], ref[:, 0]))
    assert cell.redraws() == []


def test_pooled_difference_averages_seeds_and_redraws_compare_the_reference_with_itself(redraws):
    gen = np.random.default_rng(4)
    ref, tor = _flags(gen, 400, 3, 0.5), _flags(gen, 400, 3, 0.5)
    tor[:, 2] = True  # the third draw of the torch backend gets every image right
    cell = redraws.RedrawCell("frost", 2, [0, 1, 2], ref, tor)
    diff, low, high, p = cell.pooled()
    per_seed = 100.0 * (tor.mean(axis=0) - ref.mean(axis=0))
    assert diff == pytest.approx(per_seed.mean())
    assert low < diff < high
    assert p < 1e-6  # torch is better on average: the sign test sees it
    assert cell.redraws() == pytest.approx(100.0 * (ref[:, 1:].mean(axis=0) - ref[:, 0].mean()))
    table = redraws.markdown([cell], "python benchmarks/fidelity_redraws.py ...", "torch, device cpu", 400)
    assert f"{diff:+.2f}" in table and "| frost | 2 |" in table


def test_a_small_run_writes_its_table_and_resumes_from_the_cache(redraws, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    from robustbench_sympie.datasets import demo_data_root

    args = ["--data-root", str(demo_data_root()), "--limit", "4", "--corruptions", "gaussian_noise",
            "--severities", "5", "--seeds", "0,1", "--device", "cpu", "--workers", "1",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "table.md")]
    assert redraws.main(args) == 0
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached == ["gaussian_noise-s5-seed0-n4.npz", "gaussian_noise-s5-seed1-n4.npz"]
    first = (tmp_path / "table.md").read_text()
    stamps = [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())]
    assert redraws.main(args) == 0  # every (cell, seed) comes from the cache
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())] == stamps
    assert (tmp_path / "table.md").read_text() == first
    assert "| gaussian_noise | 5 |" in first


def test_fewer_than_two_seeds_is_a_clear_error(redraws, capsys):
    with pytest.raises(SystemExit):
        redraws.main(["--corruptions", "snow", "--seeds", "0", "--out", "x.md"])
    assert "at least two different seeds" in capsys.readouterr().err
