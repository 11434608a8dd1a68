"""The ten ImageNet-C-Bar corruptions: registry, determinism, geometry, severity ordering, on-the-fly dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_sympie.corruptions import get_corruption, imagenet_c_bar, list_corruptions
from robustbench_sympie.corruptions.imagenet_c_bar import CBAR_CORRUPTIONS, FAMILY, PARAMETERS
from robustbench_sympie.datasets import Cell, create_dataset, expand_corruptions
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess, load_rgb

SIZE = 96


@pytest.fixture(scope="module")
def image(demo_root: Path) -> np.ndarray:
    """One real demo image at 96 x 96."""
    return Preprocess(SIZE, SIZE)(load_rgb(sorted(demo_root.iterdir())[5]))


def _change(out: np.ndarray, clean: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float64) - clean).mean())


def test_the_ten_are_registered_with_the_published_parameters():
    assert list_corruptions(FAMILY) == sorted(CBAR_CORRUPTIONS) and len(CBAR_CORRUPTIONS) == 10
    assert expand_corruptions("imagenet-c-bar") == list(CBAR_CORRUPTIONS) == expand_corruptions("c-bar")
    assert imagenet_c_bar.PARAMETERS is PARAMETERS and imagenet_c_bar.CBAR_CORRUPTIONS == CBAR_CORRUPTIONS
    assert PARAMETERS["caustic_refraction"] == (2.35, 3.2, 4.9, 6.6, 9.15)
    assert PARAMETERS["plasma_noise"] == (4.75, 7.0, 8.5, 9.25, 10.0)
    assert all(len(v) == 5 and list(v) == sorted(v) for v in PARAMETERS.values())


@pytest.mark.parametrize("name", CBAR_CORRUPTIONS)
def test_deterministic_and_stronger_at_higher_severity(name: str, image: np.ndarray):
    """Mean absolute change from clean grows with severity.

    The same seed gives the same random draws at every severity (no draw depends on it), so only the severity
    parameter changes. Nine corruptions are then monotone per pixel (a larger blend weight, noise amplitude,
    radius, window hardness, cut-out fraction or masking threshold); caustic_refraction displaces further and
    lights harder, monotone in the mean rather than per pixel (checked on demo images over several seeds).
    """
    corruption = get_corruption(name)
    change = []
    for severity in range(1, 6):
        out = corruption(image, severity, 11)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.array_equal(out, corruption(image, severity, 11))
        change.append(_change(out, image))
    assert not np.array_equal(corruption(image, 3, 11), corruption(image, 3, 12))
    assert change[0] > 0.5, change
    assert all(b >= a - 0.05 for a, b in zip(change[:-1], change[1:], strict=True)), change
    assert change[-1] > 1.5 * change[0], change


def test_any_geometry_without_numerical_warnings():
    rng = np.random.default_rng(0)
    for shape in ((32, 32, 3), (40, 57, 3), (61, 33, 3)):
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for name in CBAR_CORRUPTIONS:
                out = get_corruption(name)(image, 5, 3)
                assert out.shape == shape and out.dtype == np.uint8, name


def _pixels(dataset, cell: Cell) -> torch.Tensor:
    data = dataset.cell_dataset(cell)
    return torch.stack([data[i].image for i in range(len(data))]).float()


def test_dataset_generates_on_the_fly_from_a_clean_folder(few_images: Path):
    kwargs = dict(data_root=few_images, corruptions="clean,sparkles,checkerboard_cutout,gaussian_noise",
                  severities=[1, 5], seed=0, preprocess=Preprocess(64, 64), limit=2)
    dataset, again = create_dataset("imagenet-c-bar", **kwargs), create_dataset("imagenet-c-bar", **kwargs)
    assert dataset.name == "imagenet-c-bar" and dataset.n_images == 2
    assert dataset.cells() == [Cell("clean", 0), Cell("sparkles", 1), Cell("sparkles", 5),
                               Cell("checkerboard_cutout", 1), Cell("checkerboard_cutout", 5)]
    assert dataset.provenance()["data_root"] == str(few_images)
    clean = _pixels(dataset, Cell("clean", 0))
    for cell in dataset.cells()[1:]:
        pixels = _pixels(dataset, cell)
        assert pixels.shape == clean.shape and torch.equal(pixels, _pixels(again, cell))
        assert (pixels - clean).abs().mean() > 0.5, cell


def test_rendered_build_without_cbar_folders_is_not_corrupted_again(tmp_path: Path):
    (tmp_path / "n01440764").mkdir()
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DataError, match="none of the requested"):
        create_dataset("imagenet-c-bar", data_root=tmp_path, corruptions="sparkles", severities=[1])


def test_runner_evaluates_generated_cbar(few_images: Path, tmp_path: Path):
    from robustbench_sympie.runner import SuiteConfig, run_suite

    config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], dataset="imagenet-c-bar",
                         data_root=few_images, corruptions="clean,perlin_noise", severities=[2], limit=2,
                         resize=64, crop=64, workers=0, device="cpu", out=tmp_path / "run", progress=False)
    rows = run_suite(config)
    assert list(zip(rows["corruption"], rows["severity"], strict=True)) == [("clean", 0), ("perlin_noise", 2)]
    assert set(rows["dataset"]) == {"imagenet-c-bar"} and set(rows["n"]) == {2}
