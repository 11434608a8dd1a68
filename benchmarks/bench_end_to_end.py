"""End to end: ``run_suite`` throughput against the model's forward pass on pre-loaded tensors (the ceiling)."""

from __future__ import annotations

import os

import torch
from conftest import median_seconds, record

from robustbench_sympie.datasets import Cell, collate_samples, create_dataset, demo_data_root
from robustbench_sympie.models import create_model
from robustbench_sympie.runner import SuiteConfig, run_suite

N_IMAGES, BATCH = 96, 32


def test_pipeline_efficiency(benchmark, device, tmp_path) -> None:
    workers = int(os.environ.get("BENCH_WORKERS", min(8, os.cpu_count() or 1)))
    config = SuiteConfig(enhancers=["identity"], models=["efficientnet_lite0"], data_root=demo_data_root(),
                         corruptions="gaussian_noise", severities=[3], limit=N_IMAGES, batch_size=BATCH,
                         workers=workers, device=str(device), progress=False, out=tmp_path / "run")

    def one_run():
        for path in (tmp_path / "run").glob("*"):
            path.unlink()
        return run_suite(config)

    benchmark.pedantic(one_run, rounds=2, warmup_rounds=0)
    suite_rate = N_IMAGES / benchmark.stats.stats.median

    dataset = create_dataset("imagenet-c", data_root=demo_data_root(), corruptions="gaussian_noise",
                             severities=[3], limit=BATCH)
    cell = dataset.cell_dataset(Cell("gaussian_noise", 3))
    images = collate_samples([cell[i] for i in range(BATCH)]).images.to(device).float().div_(255)
    model = create_model("efficientnet_lite0").to(device)
    with torch.inference_mode():
        ceiling = BATCH / median_seconds(lambda: model(images), repeats=3)
    record(benchmark, f"run_suite, {workers} workers", suite_rate, "images/s",
           "pipeline efficiency (suite / model ceiling)", suite_rate / ceiling)
