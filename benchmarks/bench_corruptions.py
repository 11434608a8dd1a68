"""On-the-fly corruption: images per second of the suite's data path (decode, resize, crop, corrupt)."""

from __future__ import annotations

import pytest
from conftest import median_seconds, record

from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from robustbench_sympie.datasets import Cell, create_dataset, demo_data_root

N_IMAGES = 8
NAMES = list(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS) + ["darken", "sunset", "night", "white_point"]


@pytest.fixture(scope="module")
def dataset():
    return create_dataset("imagenet-c", data_root=demo_data_root(), corruptions=",".join(NAMES), severities=[3],
                          limit=N_IMAGES)


@pytest.fixture(scope="module")
def clean_seconds(dataset) -> float:
    cell = dataset.cell_dataset(Cell("clean", 0))
    return median_seconds(lambda: [cell[i] for i in range(N_IMAGES)], repeats=3)


@pytest.mark.parametrize("name", NAMES)
def test_corruption_throughput(benchmark, dataset, clean_seconds, name: str) -> None:
    cell = dataset.cell_dataset(Cell(name, 3))
    benchmark.pedantic(lambda: [cell[i] for i in range(N_IMAGES)], rounds=2, warmup_rounds=0)
    seconds = benchmark.stats.stats.median
    record(benchmark, f"{name} (severity 3)", N_IMAGES / seconds, "images/s per core", "time vs clean path",
           seconds / clean_seconds)
