"""Shared fixtures: real sample images, image-folder builders and tiny registered stand-ins."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.models import Classifier, register_model

#: the 800 shared ImageNet sample images (``ROBUSTBENCH_SYMPIE_SAMPLE`` points elsewhere, e.g. on a GPU machine)
SHARED_SAMPLE = Path(os.environ.get("ROBUSTBENCH_SYMPIE_SAMPLE")
                     or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-sample")


class TinyNet(nn.Module):
    """A fixed random 1000-way CNN: fast stand-in for runner mechanics (never for accuracy claims)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.fc = nn.Linear(8, 1000)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))


@register_model("tiny_test_model", overwrite=True)
def tiny_test_model(weights=None) -> Classifier:
    return Classifier(TinyNet(), name="tiny_test_model", weights="random-fixed")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small-tensor tests (no OpenMP start-up or contention), restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_root() -> Path:
    return demo_data_root()


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    if not SHARED_SAMPLE.is_dir():
        pytest.skip(f"the shared sample images are not at {SHARED_SAMPLE}")
    return SHARED_SAMPLE


@pytest.fixture
def few_images(tmp_path: Path, demo_root: Path) -> Path:
    """A flat folder with 6 real demo images."""
    root = tmp_path / "few"
    root.mkdir()
    for path in sorted(demo_root.iterdir())[::17][:6]:
        shutil.copy(path, root / path.name)
    return root
