"""Corruptions: every one runs, severities differ, and pixels are seeded per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from robustbench_sympie.corruptions import get_corruption, list_corruptions, sample_seed
from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from robustbench_sympie.datasets import Cell, create_dataset, expand_corruptions, grid_cells
from robustbench_sympie.imageio import Preprocess
from robustbench_sympie.registry import UnknownNameError

SMALL = Preprocess(resize=72, crop=64)


def test_groups_expand_and_unknown_names_fail():
    assert expand_corruptions("clean,benchmark")[1:] == list(BENCHMARK_CORRUPTIONS)
    assert expand_corruptions(["extra"]) == list(EXTRA_CORRUPTIONS)
    assert expand_corruptions("noise,gaussian_noise") == ["gaussian_noise", "shot_noise", "impulse_noise"]
    with pytest.raises(UnknownNameError, match="Did you mean 'gaussian_noise'"):
        expand_corruptions("gausian_noise")
    assert grid_cells(["clean", "fog"], [1, 3]) == [Cell("clean", 0), Cell("fog", 1), Cell("fog", 3)]
    with pytest.raises(ValueError, match="severities"):
        grid_cells(["fog"], [0])


@pytest.mark.parametrize("name", list(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS))
def test_every_imagenet_c_corruption_is_deterministic_and_changes_the_image(name, demo_root: Path):
    dataset = create_dataset("imagenet-c", data_root=demo_root, corruptions=name, severities=[1, 5], limit=1,
                             preprocess=SMALL)
    clean = dataset.cell_dataset(Cell("clean", 0)).pixels(dataset.records[0]).astype(float)
    low, high = (dataset.cell_dataset(Cell(name, s)).pixels(dataset.records[0]) for s in (1, 5))
    assert low.shape == high.shape == (64, 64, 3) and low.dtype == np.uint8
    assert np.array_equal(high, dataset.cell_dataset(Cell(name, 5)).pixels(dataset.records[0]))
    assert np.abs(high - clean).mean() > np.abs(low - clean).mean() * 0.999
    assert np.abs(high - clean).mean() > 1.0


def test_seed_depends_on_every_part_of_the_key():
    base = sample_seed("a.JPEG", "fog", 3, 0)
    others = {sample_seed("b.JPEG", "fog", 3, 0), sample_seed("a.JPEG", "snow", 3, 0),
              sample_seed("a.JPEG", "fog", 4, 0), sample_seed("a.JPEG", "fog", 3, 1)}
    assert base not in others and len(others) == 4
    assert base == sample_seed("a.JPEG", "fog", 3, 0)


def _pixels_via_loader(dataset, cell: Cell, workers: int, order: list[int]) -> torch.Tensor:
    subset = torch.utils.data.Subset(dataset.cell_dataset(cell), order)
    loader = DataLoader(subset, batch_size=2, num_workers=workers,
                        collate_fn=lambda samples: torch.stack([s.image for s in samples]))
    return torch.cat(list(loader))


@pytest.mark.parametrize("name", ["gaussian_noise", "impulse_noise", "glass_blur", "spatter", "frost"])
def test_same_pixels_across_worker_counts_order_and_subsets(name, demo_root: Path):
    dataset = create_dataset("imagenet-c", data_root=demo_root, corruptions=name, severities=[3], limit=4,
                             preprocess=SMALL)
    cell = Cell(name, 3)
    serial = _pixels_via_loader(dataset, cell, 0, [0, 1, 2, 3])
    parallel = _pixels_via_loader(dataset, cell, 2, [0, 1, 2, 3])
    reversed_ = _pixels_via_loader(dataset, cell, 0, [3, 2, 1, 0]).flip(0)
    assert torch.equal(serial, parallel) and torch.equal(serial, reversed_)
    assert torch.equal(serial[2], _pixels_via_loader(dataset, cell, 0, [2])[0])
    other_seed = create_dataset("imagenet-c", data_root=demo_root, corruptions=name, severities=[3], limit=4,
                                preprocess=SMALL, seed=1)
    assert not torch.equal(serial, _pixels_via_loader(other_seed, cell, 0, [0, 1, 2, 3]))


def test_global_random_state_is_left_untouched(demo_root: Path):
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    get_corruption("gaussian_noise")(np.zeros((32, 32, 3), np.uint8), 3, seed=5)
    assert np.random.rand() == expected
    assert "gaussian_noise" in list_corruptions("noise")
