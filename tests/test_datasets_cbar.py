"""ImageNet-C-Bar: both published layouts (parameter-named and 1..5 severity folders), severities 1..5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.datasets.imagenet_c_bar import select
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess


def _write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, quality=85)


def _open(root: Path, corruptions: str = "clean,benchmark"):
    return create_dataset("imagenet-c-bar", data_root=root, corruptions=corruptions, severities=[1, 2, 3, 4, 5],
                          seed=0, preprocess=Preprocess(256, 64), limit=None)


def test_parameter_named_folders_map_to_severities(tmp_path: Path):
    bar = tmp_path / "ImageNet-C-Bar"
    for folder in ("2.35", "3.20", "9.15"):
        _write(bar / "caustic_refraction" / folder / "n01440764" / "x.JPEG")
    _write(bar / "brownish_noise" / "1.00" / "n01440764" / "x.JPEG")
    (bar / "brownish_noise" / "7.77").mkdir()  # not a severity of brownish_noise: ignored
    dataset = _open(tmp_path)  # the parent of ImageNet-C-Bar/ works too
    assert dataset.name == "imagenet-c-bar"
    assert dataset.cells() == [Cell("brownish_noise", 1), Cell("caustic_refraction", 1),
                               Cell("caustic_refraction", 2), Cell("caustic_refraction", 5)]
    missing = dataset.provenance()["missing_cells"].split(",")
    assert "clean/0" in missing and "caustic_refraction/3" in missing and len(missing) == 1 + 50 - 4
    assert dataset.cell_dataset(Cell("caustic_refraction", 5))[0].target == 0


def test_renamed_severity_folders_and_selection(tmp_path: Path):
    _write(tmp_path / "sparkles" / "3" / "n01440764" / "x.JPEG")
    _write(tmp_path / "clean" / "n01440764" / "x.JPEG")
    assert _open(tmp_path, "clean,sparkles").cells() == [Cell("clean", 0), Cell("sparkles", 3)]
    assert select("clean,gaussian_noise") == ["clean", *select("imagenet-c-bar")] and len(select("c-bar")) == 10
    with pytest.raises(DataError, match="needs --data-root"):
        _open(None)
