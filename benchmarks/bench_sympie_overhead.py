"""SyMPIE (NEM + DWM) time as a fraction of each downstream model's forward time, batch 32 at 224x224."""

from __future__ import annotations

import pytest
import torch
from conftest import median_seconds, record

from robustbench_sympie.enhancers.sympie import Sympie
from robustbench_sympie.models import Classifier, create_model

MODELS = ["efficientnet_lite0", "resnet50", "vit_b_16"]


def _model(name: str) -> Classifier:
    """The real model where its weights are on disk, else the same architecture (timing needs no weights)."""
    import torchvision

    if name.startswith("efficientnet_lite"):
        return create_model(name)
    return Classifier(torchvision.models.get_model(name, weights=None), name=name, weights="architecture only")


@pytest.mark.parametrize("name", MODELS)
def test_sympie_overhead(benchmark, device, name: str) -> None:
    batch = torch.rand(32, 3, 224, 224, device=device)
    model = _model(name).to(device)
    enhancer = Sympie(weights=None).eval().to(device)
    with torch.inference_mode():
        benchmark.pedantic(model, args=(batch,), rounds=3, warmup_rounds=1)
        sympie = median_seconds(lambda: enhancer(batch), repeats=3)
    model_time = benchmark.stats.stats.median
    record(benchmark, f"{name} forward, batch 32", 32 / model_time, "images/s", "SyMPIE / model time",
           sympie / model_time)
