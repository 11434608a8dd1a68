"""The colour warps as a registered dataset: determinism, severity ordering, and a runner pass."""

from __future__ import annotations

from pathlib import Path

import torch

from robustbench_sympie.corruptions.colour_warps import COLOUR_WARPS
from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.imageio import Preprocess

SMALL = Preprocess(64, 64)


def _pixels(dataset, cell: Cell) -> torch.Tensor:
    data = dataset.cell_dataset(cell)
    return torch.stack([data[i].image for i in range(len(data))]).float()


def test_warps_dataset_is_deterministic_and_stronger_at_higher_severity(demo_root: Path):
    kwargs = dict(data_root=demo_root, corruptions="clean,benchmark", severities=[1, 2, 3, 4, 5], seed=3,
                  preprocess=SMALL, limit=3)
    dataset, again = create_dataset("colour-warps", **kwargs), create_dataset("colour-warps", **kwargs)
    assert dataset.name == "colour-warps"
    assert dataset.cells() == [Cell("clean", 0)] + [Cell(w, s) for w in COLOUR_WARPS for s in range(1, 6)]
    clean = _pixels(dataset, Cell("clean", 0))
    for warp in COLOUR_WARPS:
        change = []
        for severity in range(1, 6):
            pixels = _pixels(dataset, Cell(warp, severity))
            assert torch.equal(pixels, _pixels(again, Cell(warp, severity)))
            change.append(float((pixels - clean).abs().mean()))
        assert change[0] > 0.5 and all(b > a for a, b in zip(change[:-1], change[1:], strict=True)), (warp, change)


def test_runner_evaluates_the_warps_like_imagenet_c(demo_root: Path, tmp_path: Path):
    from robustbench_sympie.runner import SuiteConfig, run_suite

    for dataset in ("colour-warps", "imagenet-c"):
        config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], dataset=dataset,
                             data_root=demo_root, corruptions="clean,colour_warp", severities=[2], limit=2,
                             resize=64, crop=64, workers=0, device="cpu", out=tmp_path / dataset, progress=False)
        rows = run_suite(config)
        assert sorted(rows["corruption"]) == sorted(["clean", *COLOUR_WARPS]) and set(rows["dataset"]) == {dataset}
