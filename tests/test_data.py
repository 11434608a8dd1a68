"""Clean folders: both layouts, awkward file names and formats, bad files and bad layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustbench_sympie.datasets import Cell, collate_samples, create_dataset
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess, evenly_spaced, load_rgb, scan_image_folder
from robustbench_sympie.labels import imagenet_classes


def _demo(demo_root: Path, wnid: str) -> Path:
    return next(demo_root.glob(f"{wnid}_*"))


def test_class_index_is_the_sorted_wnid_order():
    classes = imagenet_classes()
    assert len(classes) == 1000 and list(classes.wnids) == sorted(classes.wnids)
    assert classes.index_of["n01440764"] == 0 and classes.names[0] == "tench"


def test_flat_and_subfolder_layouts_with_awkward_names(tmp_path: Path, demo_root: Path):
    tench = _demo(demo_root, "n01440764")
    (tmp_path / "n01530575").mkdir()
    shutil.copy(tench, tmp_path / "n01440764_it's a fish.JPEG")  # apostrophe and spaces
    shutil.copy(tench, tmp_path / "n01530575" / "ILSVRC2012_val_00000001.jpg")  # val layout, lower-case ext
    Image.open(tench).convert("L").save(tmp_path / "n01440764_grey.JPG")  # grey-scale, upper-case ext
    Image.open(tench).convert("CMYK").save(tmp_path / "n01440764_cmyk.jpeg")  # CMYK JPEG
    Image.open(tench).convert("RGBA").save(tmp_path / "n01440764_alpha.png")
    (tmp_path / "notes.txt").write_text("not an image")
    records = scan_image_folder(tmp_path)
    assert [r.image_id for r in records] == [
        "n01440764_alpha.png", "n01440764_cmyk.jpeg", "n01440764_grey.JPG", "n01440764_it's a fish.JPEG",
        "n01530575/ILSVRC2012_val_00000001.jpg",
    ]
    assert [r.label for r in records] == [0, 0, 0, 0, 10]
    for record in records:
        pixels = Preprocess()(load_rgb(record.path))
        assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    grey = Preprocess()(load_rgb(records[2].path))
    assert np.array_equal(grey[..., 0], grey[..., 1])


def test_unlabelled_missing_and_empty_roots_are_clear_errors(tmp_path: Path, demo_root: Path):
    with pytest.raises(DataError, match="does not exist"):
        scan_image_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no images found"):
        scan_image_folder(tmp_path)
    shutil.copy(_demo(demo_root, "n01440764"), tmp_path / "holiday_photo.jpg")
    with pytest.raises(DataError, match=r"holiday_photo\.jpg.*<wnid>_<name>\.JPEG"):
        scan_image_folder(tmp_path)


def test_truncated_and_garbage_files_are_reported_and_skipped(tmp_path: Path, demo_root: Path):
    good = _demo(demo_root, "n01440764")
    shutil.copy(good, tmp_path / good.name)
    data = good.read_bytes()
    (tmp_path / "n01443537_truncated.JPEG").write_bytes(data[: len(data) // 3])
    (tmp_path / "n01484850_garbage.JPEG").write_bytes(b"this is not a jpeg at all")
    dataset = create_dataset("imagenet-c", data_root=tmp_path, corruptions="clean")
    samples = [dataset.cell_dataset(Cell("clean", 0))[i] for i in range(3)]
    batch = collate_samples(samples)
    assert batch.images.shape == (1, 3, 224, 224) and batch.targets.tolist() == [0]
    assert len(batch.errors) == 2
    assert any("n01443537_truncated.JPEG" in e for e in batch.errors)
    assert any("n01484850_garbage.JPEG" in e for e in batch.errors)


def test_evenly_spaced_subset_is_deterministic(demo_root: Path):
    records = scan_image_folder(demo_root)
    subset = evenly_spaced(records, 5)
    assert len(subset) == 5 and subset[0] == records[0] and subset[-1] == records[-1]
    assert subset == evenly_spaced(records, 5)
    assert evenly_spaced(records, None) == records


def test_preprocess_geometry_is_validated():
    with pytest.raises(ValueError, match="resize >= crop >= 32"):
        Preprocess(resize=100, crop=224)
