"""Baseline enhancers (package ``baselines/``), reached only through the public registry and its entry points."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustbench_sympie import create_enhancer, list_enhancers
from robustbench_sympie.cli.run_suite import main
from robustbench_sympie.datasets import demo_data_root
from robustbench_sympie.enhancers import ENHANCERS

DENOISERS = ["gaussian_denoise", "median_denoise", "bilateral_denoise", "nlmeans_denoise", "tv_denoise",
             "wavelet_denoise", "bm3d_denoise", "ffdnet"]
PARAMETRIC = ["grey_world", "auto_levels", "clahe", "auto_gamma", "unsharp_mask"]
BASELINES = DENOISERS + PARAMETRIC
COSTS_MD = Path(__file__).resolve().parents[1] / "baselines" / "COSTS.md"


def build(name: str, **kwargs):
    """The registered baseline ``name``; skips when its optional extra (BM3D) is not installed."""
    try:
        return create_enhancer(name, **kwargs).eval()
    except ImportError as exc:
        pytest.skip(str(exc))


def demo_image(index: int = 0, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Demo image ``index`` as a 1 x 3 x H x W float batch, optionally resized to (height, width)."""
    image = Image.open(sorted(demo_data_root().iterdir())[index]).convert("RGB")
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.array(image, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def centre_crop(images: torch.Tensor, size: int = 96) -> torch.Tensor:
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top:top + size, left:left + size]


def add_noise(images: torch.Tensor, sigma: float = 25 / 255, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images + sigma * noise).clamp(0.0, 1.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def odd_batch() -> torch.Tensor:
    """Two slightly noisy real images at an odd size (223 x 301)."""
    return add_noise(torch.cat([demo_image(0, (223, 301)), demo_image(7, (223, 301))]), sigma=0.05)


@pytest.fixture(scope="module")
def grey_batch(odd_batch: torch.Tensor) -> torch.Tensor:
    """A grey image: three equal channels."""
    return odd_batch[:1].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()


# -- registration ---------------------------------------------------------------------------------------------------
def test_every_baseline_is_registered_through_an_entry_point():
    assert set(BASELINES) <= set(list_enhancers())
    for name in BASELINES:
        assert ENHANCERS.source(name).startswith("entry point baselines."), name


def test_plugin_path_from_a_fresh_interpreter():
    code = textwrap.dedent("""
        import sys, torch
        import robustbench_sympie
        from robustbench_sympie import create_enhancer, list_enhancers
        before = "baselines" in sys.modules
        names = list_enhancers()
        out = create_enhancer("grey_world")(torch.full((1, 3, 5, 7), 0.25))
        print(before, "tv_denoise" in names and "clahe" in names, float(out.max()))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True", "0.25"]


def test_core_package_never_imports_baselines():
    package = Path(__file__).resolve().parents[1] / "robustbench_sympie"
    offenders = [p for p in package.rglob("*.py") if "import baselines" in p.read_text()
                 or "from baselines" in p.read_text()]
    assert offenders == []


# -- the enhancer contract ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASELINES)
def test_shape_range_dtype_and_determinism_on_odd_sizes(name: str, odd_batch: torch.Tensor):
    enhancer = build(name)
    with torch.no_grad():
        first, second = enhancer(odd_batch), enhancer(odd_batch)
    assert first.shape == odd_batch.shape and first.dtype == odd_batch.dtype
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, second)
    assert torch.isfinite(first).all()


@pytest.mark.parametrize("name", BASELINES)
def test_grey_images_stay_grey(name: str, grey_batch: torch.Tensor):
    with torch.no_grad():
        out = build(name)(grey_batch)
    assert out.shape == grey_batch.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out - out.mean(dim=1, keepdim=True)).abs().max()) <= 2 / 255  # colour-space round trips


@pytest.mark.parametrize("name", BASELINES)
def test_flat_images_stay_finite(name: str):
    flat = torch.full((1, 3, 17, 9), 0.3)
    with torch.no_grad():
        out = build(name)(flat)
    assert torch.isfinite(out).all() and out.shape == flat.shape


# -- what each baseline is for -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DENOISERS)
def test_denoisers_raise_psnr_of_a_noisy_image(name: str):
    clean = torch.cat([centre_crop(demo_image(0)), centre_crop(demo_image(1))])
    noisy = add_noise(clean)
    with torch.no_grad():
        denoised = build(name)(noisy)
    assert psnr(denoised, clean) >= psnr(noisy, clean) + 1.5, name


def test_grey_world_removes_a_colour_cast():
    image = centre_crop(demo_image(3))
    cast = (image * torch.tensor([1.0, 0.8, 0.55]).view(1, 3, 1, 1)).clamp(0, 1)
    out = build("grey_world")(cast)
    spread = lambda x: float(x.mean(dim=(0, 2, 3)).std())  # noqa: E731
    assert spread(out) < 0.25 * spread(cast)


def test_auto_levels_stretches_a_low_contrast_image():
    dull = 0.4 + 0.2 * centre_crop(demo_image(2))
    out = build("auto_levels")(dull)
    assert float(out.std()) > 3 * float(dull.std())
    assert float(out.amin(dim=(2, 3)).max()) <= 0.01 and float(out.amax(dim=(2, 3)).min()) >= 0.99


def test_auto_gamma_brightens_a_dark_image_and_a_fixed_gamma_is_a_power():
    dark = 0.25 * centre_crop(demo_image(4))
    assert float(build("auto_gamma")(dark).mean()) > 2 * float(dark.mean())
    assert torch.allclose(build("auto_gamma", gamma=2.0)(dark), dark**2)


def test_clahe_raises_contrast_and_unsharp_mask_raises_high_frequencies():
    dull = 0.3 + 0.3 * centre_crop(demo_image(5), 128)
    assert float(build("clahe")(dull).std()) > 1.2 * float(dull.std())
    image = centre_crop(demo_image(5), 128)
    detail = lambda x: float((x[..., 1:, :] - x[..., :-1, :]).abs().mean())  # noqa: E731
    assert detail(build("unsharp_mask", amount=1.0)(image)) > 1.2 * detail(image)


def test_parameters_are_exposed():
    assert build("gaussian_denoise", sigma=2.0).sigma == 2.0
    assert build("median_denoise", ksize=7)(torch.rand(1, 3, 20, 20)).shape == (1, 3, 20, 20)  # uint8 path
    with pytest.raises(ValueError, match="odd"):
        create_enhancer("median_denoise", ksize=4)
    with pytest.raises(ValueError, match="low < high"):
        create_enhancer("auto_levels", low=0.9, high=0.1)


def test_ffdnet_loads_the_shipped_weights_and_estimates_noise():
    enhancer = build("ffdnet")
    assert enhancer.has_weights and "ffdnet_color.pth" in enhancer.weights_description
    clean = centre_crop(demo_image(0))
    noisy = add_noise(clean)
    sigmas = [float(enhancer.noise_sigma(x)) * 255 for x in (clean, noisy)]
    assert sigmas[0] < 5 and 20 < sigmas[1] < 30  # true noise: 0 (JPEG texture aside) and 25
    with torch.no_grad():
        assert psnr(enhancer(noisy), clean) >= psnr(noisy, clean) + 8
    assert create_enhancer("ffdnet", weights=None).has_weights  # None = the default (packaged) weights


def test_bm3d_is_an_opt_in_extra():
    try:
        import bm3d  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"robustbench-sympie\[bm3d\]"):
            create_enhancer("bm3d_denoise")
    else:
        pytest.skip("bm3d is installed")


# -- cost -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_declares_its_cost(name: str):
    factory = ENHANCERS.get(name)
    if name == "bm3d_denoise":
        build(name)
    rows = factory.cost()
    assert [r["resolution"] for r in rows] == ["224x224", "1920x1080"]
    if factory.flops_countable:
        assert all(math.isfinite(r["gflops"]) and r["gmacs"] == r["gflops"] / 2 for r in rows)
    else:
        assert all(math.isnan(r["gflops"]) and "COSTS.md" in r["note"] for r in rows)
    assert name in COSTS_MD.read_text()


def test_gaussian_flops_by_hand_and_flops_table_notes():
    from robustbench_sympie.flops import flops_table

    rows = ENHANCERS.get("gaussian_denoise").cost()
    taps = 2 * 3 + 1  # sigma 1 -> radius 3
    assert rows[1]["gflops"] * 1e9 == 2 * 2 * taps * 3 * 1080 * 1920
    table = flops_table(enhancers=["gaussian_denoise", "tv_denoise"], models=[], resolutions=("224x224",))
    table = table.set_index("name")
    assert table.loc["gaussian_denoise", "gflops"] > 0
    assert math.isnan(table.loc["tv_denoise", "gflops"]) and "COSTS.md" in table.loc["tv_denoise", "note"]


# -- through run_suite ----------------------------------------------------------------------------------------------
def test_run_suite_lists_and_runs_baselines(few_images: Path, tmp_path: Path, capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in BASELINES)
    out = tmp_path / "out"
    argv = ["--enhancer", "median_denoise,grey_world", "--model", "tiny_test_model", "--data-root", str(few_images),
            "--limit", "2", "--corruptions", "clean,gaussian_noise", "--severities", "3", "--out", str(out),
            "--workers", "0", "--no-progress"]
    assert main(argv) == 0
    frame = pd.read_csv(out / "results.csv")
    assert set(frame.enhancer) == {"median_denoise", "grey_world"}
    assert len(frame) == 4 and (frame.n == 2).all()
