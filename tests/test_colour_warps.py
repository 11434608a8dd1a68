"""Tests of SyMPIE's colour-warp corruptions (darken, sunset, night, white_point)."""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_sympie.corruptions import CORRUPTION_GROUPS, get_corruption, list_corruptions
from robustbench_sympie.corruptions.colour_warps import COLOUR_WARPS
from robustbench_sympie.corruptions.imagenet_c import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from robustbench_sympie.datasets import demo_data_root, expand_corruptions
from robustbench_sympie.imageio import Preprocess, load_rgb, scan_image_folder

SEED = 1234


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A real 224 x 224 demo image with bright and dark regions."""
    record = next(r for r in scan_image_folder(demo_data_root()) if "castle" in r.image_id)
    return Preprocess()(load_rgb(record.path))


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_registered_with_family_and_groups() -> None:
    assert sorted(list_corruptions("colour_warp")) == sorted(COLOUR_WARPS)
    for name in COLOUR_WARPS:
        assert get_corruption(name).family == "colour_warp"
    assert CORRUPTION_GROUPS["colour_warp"]() == list(COLOUR_WARPS)
    pool = expand_corruptions("sympie_training")
    assert pool == [*BENCHMARK_CORRUPTIONS, *EXTRA_CORRUPTIONS, *COLOUR_WARPS]
    assert len(pool) == 23


@pytest.mark.parametrize("name", COLOUR_WARPS)
def test_deterministic_shape_and_dtype(name: str, image: np.ndarray) -> None:
    corruption = get_corruption(name)
    before = image.copy()
    for severity in range(1, 6):
        first, second = corruption(image, severity, SEED), corruption(image, severity, SEED)
        assert first.shape == image.shape and first.dtype == np.uint8
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(image, before)  # the input is left alone


@pytest.mark.parametrize("name", ["sunset", "night", "white_point"])
def test_random_draw_depends_on_seed(name: str, image: np.ndarray) -> None:
    outputs = {get_corruption(name)(image, 5, seed).tobytes() for seed in range(6)}
    assert len(outputs) > 1


@pytest.mark.parametrize("name", COLOUR_WARPS)
def test_every_severity_changes_the_image_more_at_higher_severity(name: str, image: np.ndarray) -> None:
    corruption = get_corruption(name)
    diffs = [_mean_abs_diff(corruption(image, s, SEED), image) for s in range(1, 6)]
    assert min(diffs) > 0.5, diffs
    assert all(later >= earlier for earlier, later in zip(diffs, diffs[1:], strict=False)), diffs
    assert diffs[-1] > 1.5 * diffs[0], diffs


def test_darken_divides_by_severity_plus_one() -> None:
    ramp = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    for severity in range(1, 6):
        expected = np.clip(np.rint(ramp / (severity + 1)), 0, 255)
        np.testing.assert_array_equal(get_corruption("darken")(ramp, severity, SEED), expected)


def test_white_point_is_a_per_channel_gain(image: np.ndarray) -> None:
    out = get_corruption("white_point")(image, 5, SEED).astype(np.float64)
    bright = image.astype(np.float64) > 100
    gains = np.array([np.median(out[..., c][bright[..., c]] / image[..., c][bright[..., c]]) for c in range(3)])
    assert np.all(np.abs(gains - 1.0) <= 32 / 255 + 0.01)


def test_sunset_and_night_casts(image: np.ndarray) -> None:
    warm = get_corruption("sunset")(image, 5, SEED).astype(np.float64).mean(axis=(0, 1))
    assert warm[0] > warm[2]  # red dominates blue under the sunset light
    dark = get_corruption("night")(image, 5, SEED).astype(np.float64)
    assert dark.mean() < image.mean()
    assert dark[..., 2].mean() > dark[..., 0].mean()  # a blue cast
