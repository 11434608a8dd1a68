"""The torch corruption backend on CUDA: every corruption runs there, is reproducible bit for bit on the device,
does not depend on the batch, and agrees with the CPU backend (pixels for deterministic corruptions, PSNR for
random ones, whose CUDA generator draws other numbers than the CPU one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_sympie.corruptions import sample_seed
from robustbench_sympie.corruptions.torch_backend import TORCH_CORRUPTIONS, get_torch_corruption
from robustbench_sympie.imageio import Preprocess, load_rgb

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

NAMES = sorted(TORCH_CORRUPTIONS)
SEVERITY = 3


@pytest.fixture(scope="module")
def clean(demo_root: Path) -> torch.Tensor:
    paths = sorted(demo_root.glob("*.JPEG"))[:8]
    return torch.stack([torch.from_numpy(Preprocess()(load_rgb(p))).permute(2, 0, 1) for p in paths])


def _psnr(images: torch.Tensor, clean: torch.Tensor) -> float:
    mse = (images.double() - clean.double()).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(255.0 ** 2 / mse)).mean())


@pytest.mark.parametrize("name", NAMES)
def test_cuda_corruption_matches_cpu_and_is_reproducible(name: str, clean: torch.Tensor):
    corrupt = get_torch_corruption(name)
    seeds = torch.tensor([sample_seed(f"img{i}", name, SEVERITY, 0) for i in range(len(clean))])
    gpu = clean.cuda()
    first = corrupt(gpu, SEVERITY, seeds)
    again = corrupt(gpu, SEVERITY, seeds)
    assert first.device.type == "cuda" and first.dtype == torch.uint8 and first.shape == clean.shape
    assert torch.equal(first, again), "not reproducible on the device"
    alone = torch.cat([corrupt(gpu[i:i + 1], SEVERITY, seeds[i:i + 1]) for i in range(len(clean))])
    assert torch.equal(first, alone), "pixels depend on the batch"
    cpu = corrupt(clean, SEVERITY, seeds)
    deterministic = torch.equal(cpu, corrupt(clean, SEVERITY, seeds + 1))
    mean_abs = float((first.cpu().int() - cpu.int()).abs().float().mean())
    psnr_gpu, psnr_cpu = _psnr(first.cpu(), clean), _psnr(cpu, clean)
    print(f"\n{name}: deterministic={deterministic} |cuda-cpu|={mean_abs:.3f} PSNR cuda {psnr_gpu:.2f} "
          f"cpu {psnr_cpu:.2f}")
    if deterministic:
        assert mean_abs < 1.0, f"{name}: CUDA differs from the CPU backend by {mean_abs:.3f} grey levels"
    else:
        assert abs(psnr_gpu - psnr_cpu) < 1.0, f"{name}: PSNR {psnr_gpu:.2f} dB on CUDA vs {psnr_cpu:.2f} on CPU"
    assert np.isfinite(psnr_gpu)
