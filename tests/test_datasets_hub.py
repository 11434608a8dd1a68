"""ImageNet-C through the ``datasets`` library: a local saved-dataset fixture and the offline error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.datasets.hub import HubImageNetC
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess

datasets = pytest.importorskip("datasets")


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((80, 80, 3), value, np.uint8)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    """``gaussian_noise`` with severities 1 and 2 in one saved dataset; one row's bytes are not an image."""
    rows = {
        "image": [{"bytes": _jpeg(10), "path": None}, {"bytes": _jpeg(20), "path": None},
                  {"bytes": b"not a jpeg", "path": None}, {"bytes": _jpeg(30), "path": None}],
        "class_id": ["n01440764", "n01530575", "n01440764", "n01530575"],
        "filename": ["a.JPEG", "b.JPEG", "c.JPEG", "d.JPEG"],
        "severity": [1, 1, 2, 2],
    }
    features = datasets.Features({"image": datasets.Image(), "class_id": datasets.Value("string"),
                                  "filename": datasets.Value("string"), "severity": datasets.Value("int32")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "hub" / "gaussian_noise"))
    return tmp_path / "hub"


def test_saved_datasets_are_read_with_labels_severities_and_bad_rows(saved: Path):
    dataset = create_dataset("imagenet-c", data_root=saved, corruptions="gaussian_noise,fog", severities=[1, 2, 3],
                             seed=0, preprocess=Preprocess(256, 64), limit=None)
    assert isinstance(dataset, HubImageNetC)
    assert dataset.cells() == [Cell("gaussian_noise", 1), Cell("gaussian_noise", 2)]
    assert "gaussian_noise/3" in dataset.provenance()["missing_cells"]
    first = [dataset.cell_dataset(Cell("gaussian_noise", 1))[i] for i in range(2)]
    assert [s.target for s in first] == [0, 10] and first[0].image.shape == (3, 64, 64) and not first[0].error
    bad, good = (dataset.cell_dataset(Cell("gaussian_noise", 2))[i] for i in range(2))
    assert "c.JPEG" in bad.error and not good.error and int(good.image.float().mean().round()) == 30


def test_hub_errors_are_clear_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub (offline mode is enabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"cannot load 'someone/imagenet-c-fog' .*offline"):
        create_dataset("imagenet-c", data_root="hf://someone/imagenet-c-{corruption}", corruptions="fog",
                       severities=[1], seed=0, preprocess=None, limit=None)
