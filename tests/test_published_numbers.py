"""Published numbers stay true: cells of the tables in ``leaderboards/`` recomputed by the commands that made them.

Marked ``slow`` (``python -m pytest -m slow``: about ten minutes on 2 CPU cores). Each case re-runs a few published
cells and requires the published counts exactly: every corruption is seeded per (image, corruption, severity, run
seed), so a cell does not depend on which other cells run beside it, and the tables were made on this kind of
machine. A change that moves a published number fails here: re-publish the table with its command (and say so in
its README) rather than loosening this test.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from robustbench_sympie.cli.run_suite import main as run_suite

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LEADERBOARDS = REPO / "leaderboards"
CELL_KEY = ["enhancer", "model", "dataset", "corruption", "severity"]
COUNTS = ["n", "n_correct_top1", "n_correct_top5"]


@dataclass(frozen=True)
class PublishedRun:
    """Some cells of a published table and the ``run_suite`` arguments that recompute them."""

    table: str  # relative to leaderboards/
    args: tuple[str, ...]  # besides --model efficientnet_lite0, --out and the data source
    sample_limit: int | None = None  # None: the embedded demo images (no --data-root); else the shared sample

    @property
    def id(self) -> str:
        return self.table.split("/")[0] + ":" + " ".join(self.args[1::2])


RUNS = [
    # `run_suite` with no data argument (leaderboards/demo, README)
    PublishedRun("demo/cells.csv", ("--enhancer", "identity,sympie", "--corruptions", "clean,fog,jpeg_compression",
                                    "--severities", "3")),
    # the held-out SyMPIE grid on the 100 demo images
    PublishedRun("sympie_efficientnet_lite0/cells.csv",
                 ("--enhancer", "identity,sympie", "--corruptions", "glass_blur,zoom_blur,snow",
                  "--severities", "1,5")),
    # the baselines on 40 sample images
    PublishedRun("baselines_efficientnet_lite0/cells.csv",
                 ("--enhancer", "tv_denoise,ffdnet,clahe,sympie", "--corruptions", "gaussian_noise,contrast",
                  "--severities", "3"), sample_limit=40),
    # the generated suites on 100 sample images
    PublishedRun("suites_efficientnet_lite0/results_colour-warps.csv",
                 ("--dataset", "colour-warps", "--enhancer", "identity", "--corruptions", "sunset,white_point",
                  "--severities", "2,5"), sample_limit=100),
    PublishedRun("suites_efficientnet_lite0/results_imagenet-c-bar.csv",
                 ("--dataset", "imagenet-c-bar", "--enhancer", "identity", "--corruptions",
                  "caustic_refraction,sparkles", "--severities", "3"), sample_limit=100),
    PublishedRun("suites_efficientnet_lite0/results_imagenet-c-mixed.csv",
                 ("--dataset", "imagenet-c-mixed", "--enhancer", "identity", "--severities", "1-5"), sample_limit=100),
]


@pytest.mark.parametrize("published", RUNS, ids=lambda run: run.id)
def test_published_cells_reproduce(published: PublishedRun, shared_sample: Path, tmp_path: Path):
    data = [] if published.sample_limit is None else \
        ["--data-root", str(shared_sample), "--limit", str(published.sample_limit)]
    argv = ["--model", "efficientnet_lite0", *published.args, *data, "--workers", "2", "--no-progress",
            "--no-records", "--out", str(tmp_path)]
    assert run_suite(argv) == 0
    rerun = pd.read_csv(tmp_path / "results.csv")
    table = pd.read_csv(LEADERBOARDS / published.table)
    merged = rerun[CELL_KEY + COUNTS].merge(table[CELL_KEY + COUNTS], on=CELL_KEY, how="left",
                                            suffixes=("", "_published"), validate="one_to_one")
    assert len(merged) >= 2
    unpublished = merged[merged.n_published.isna()]
    assert unpublished.empty, f"cells not in {published.table}:\n{unpublished[CELL_KEY]}"
    moved = merged[(merged[COUNTS].to_numpy() != merged[[c + "_published" for c in COUNTS]].to_numpy()).any(axis=1)]
    assert moved.empty, f"cells that no longer match {published.table} (re-publish it with its command):\n{moved}"


# -- leaderboards/corruption_fidelity.csv ------------------------------------------------------------------------------


@dataclass
class FidelitySetUp:
    """``benchmarks/corruption_fidelity.py`` set up on the published images (all 800 sample images, CPU), with a
    pool of two processes rendering the reference, and the published table."""

    script: Any
    inputs: Any
    pool: Any
    published: pd.DataFrame

    def render(self, name: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
        """Both backends' rendering of one cell with the published seeds (run seed 0)."""
        from robustbench_sympie.corruptions import sample_seed

        seeds = [sample_seed(r.image_id, name, severity, 0) for r in self.inputs.records]
        reference, _ = self.script.render_reference(self.pool, 2, name, severity, seeds)
        torch_out, _ = self.script.render_torch(self.inputs.torch_corruptions[name], self.inputs.clean, severity,
                                                seeds, self.inputs.device, 64)
        return reference, torch_out


@pytest.fixture(scope="module")
def fidelity(shared_sample: Path):
    # the script's spawned reference workers import it by name, through the parent's sys.path
    sys.path.insert(0, str(REPO / "benchmarks"))
    script = importlib.import_module("corruption_fidelity")
    inputs = script.load_inputs(script._parse(["--data-root", str(shared_sample), "--device", "cpu",
                                               "--corruptions", "benchmark"]))
    published = pd.read_csv(LEADERBOARDS / "corruption_fidelity.csv").set_index(["corruption", "severity"])
    with mp.get_context("spawn").Pool(2, initializer=script._init_worker, initargs=(inputs.clean,)) as pool:
        yield FidelitySetUp(script, inputs, pool, published)
    sys.path.remove(str(REPO / "benchmarks"))


def test_fidelity_pixels_reproduce_for_every_benchmark_corruption(fidelity):
    """Mean PSNR of both backends and their mean pixel difference, severity 3 of the 15 corruptions, 800 images."""
    script, inputs = fidelity.script, fidelity.inputs
    assert len(inputs.records) == 800 and len(inputs.names) == 15
    moved = []
    for name in inputs.names:
        reference, torch_out = fidelity.render(name, 3)
        row = fidelity.published.loc[(name, 3)]
        got = (script.psnr(reference, inputs.clean).mean(), script.psnr(torch_out, inputs.clean).mean(),
               np.abs(reference.astype(np.float64) - torch_out.astype(np.float64)).mean())
        want = (row.psnr_reference, row.psnr_torch, row.mean_abs_diff)
        if not np.allclose(got, want, rtol=1e-6, atol=1e-6):
            moved.append(f"{name} 3: PSNR ref/torch, |diff| {np.round(got, 4)} != published {np.round(want, 4)}")
    assert not moved, "re-publish corruption_fidelity.md with its command:\n" + "\n".join(moved)


@pytest.mark.parametrize("name,severity", [("zoom_blur", 1), ("snow", 5)])
def test_fidelity_top1_reproduces(fidelity, name: str, severity: int):
    """Top-1 of efficientnet_lite0 on both backends' images of a deterministic and a random cell, 800 images."""
    inputs = fidelity.inputs
    reference, torch_out = fidelity.render(name, severity)
    row = fidelity.published.loc[(name, severity)]
    top1 = [100.0 * fidelity.script.top1_flags(inputs.model, images, inputs.labels, inputs.device, 64).mean()
            for images in (reference, torch_out)]
    assert top1 == pytest.approx([row.top1_reference, row.top1_torch], abs=1e-9)


# -- leaderboards/flops.csv --------------------------------------------------------------------------------------------


def test_flops_table_reproduces(tmp_path: Path):
    """``publish_leaderboard --flops`` gives the published FLOPs, MACs and parameters of every registered module
    (run as the command, in its own process: the tests' registered stand-ins are not part of the table)."""
    subprocess.run(["publish_leaderboard", "--flops", "--out", str(tmp_path)], check=True, capture_output=True)
    key = ["name", "resolution"]
    fresh = pd.read_csv(tmp_path / "flops.csv").set_index(key).sort_index()
    published = pd.read_csv(LEADERBOARDS / "flops.csv").set_index(key).sort_index()
    assert fresh.index.equals(published.index), "registered modules differ from leaderboards/flops.csv: re-publish"
    pd.testing.assert_frame_equal(fresh[["kind", "params"]], published[["kind", "params"]])
    np.testing.assert_allclose(fresh[["gflops", "gmacs"]], published[["gflops", "gmacs"]], rtol=1e-6)
    overhead = pd.read_csv(LEADERBOARDS / "flops_overhead.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "flops_overhead.csv"), overhead, rtol=1e-6)
