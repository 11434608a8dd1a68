"""VizWiz-Classification: the public annotation format, masked predictions, the server file, labelled runs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.datasets.vizwiz import accuracy, predict, write_predictions
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess
from robustbench_sympie.labels import imagenet_classes
from robustbench_sympie.models import create_model
from robustbench_sympie.runner import CellCounter, SuiteConfig, run_suite

CATEGORIES = (0, 7, 94, 281, 409)
FILES = ("VizWiz_val_00000001.jpg", "VizWiz_val_00000002.jpg", "VizWiz_test_00000003.jpg", "VizWiz_test_00000004.jpg")
#: VizWiz-ImageQualityIssues votes (5 crowd workers) per image
VOTES = ({"BLR": 3, "FRM": 1, "NON": 1}, {"NON": 5}, {"BLR": 2, "DRK": 4}, {"ROT": 1, "NON": 4})
SMALL = Preprocess(64, 64)


def _annotations(images: list) -> dict:
    wnids = imagenet_classes().wnids
    return {"categories": [{"id": i, "wordnet_id": wnids[i]} for i in CATEGORIES], "images": images}


def _quality_record(file: str, votes: dict) -> dict:
    flaws = {flag: votes.get(flag, 0) for flag in ("FRM", "BLR", "DRK", "BRT", "OBS", "OTH", "NON", "ROT")}
    return {"flaws": flaws, "image": file, "unrecognizable": 0}


@pytest.fixture
def public_root(tmp_path: Path, demo_root: Path) -> Path:
    """The public layout: annotations.json (names only), images/ (flat and per split), quality_annotations/."""
    root = tmp_path / "vizwiz"
    sources = sorted(demo_root.iterdir())[::20]
    for i, file in enumerate(FILES):
        target = root / "images" / (file if i % 2 == 0 else f"{file.split('_')[1]}/{file}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[i], target)
    (root / "annotations.json").write_text(json.dumps(_annotations(list(FILES))))
    (root / "quality_annotations").mkdir()
    records = [_quality_record(f, v) for f, v in zip(FILES, VOTES, strict=True)]
    (root / "quality_annotations" / "val.json").write_text(json.dumps(records))
    return root


def _tiny():
    return create_model("tiny_test_model")


def test_public_annotations_give_masked_predictions_and_the_server_file(public_root: Path, tmp_path: Path):
    dataset = create_dataset("vizwiz", data_root=public_root, preprocess=SMALL)
    assert dataset.n_images == 4 and not dataset.has_labels
    assert dataset.logit_mask().nonzero().flatten().tolist() == list(CATEGORIES)
    assert [sorted(image.flags) for image in dataset.images] == [["BLR"], ["NON"], ["BLR", "DRK"], ["NON"]]
    with pytest.raises(DataError, match="no labels"):
        dataset.cells()
    predictions, errors = predict(dataset, _tiny(), batch_size=3)
    assert not errors and [file for file, _ in predictions] == list(FILES)
    assert all(index in CATEGORIES for _, index in predictions)
    written = json.loads(write_predictions(predictions, tmp_path / "out" / "predictions.json").read_text())
    assert written == [[file, index] for file, index in predictions]


def test_labelled_copy_scores_overall_and_per_flag_with_masked_logits(public_root: Path, tmp_path: Path):
    predictions = dict(predict(create_dataset("vizwiz", data_root=public_root, preprocess=SMALL), _tiny())[0])
    other = {c: next(x for x in CATEGORIES if x != c) for c in CATEGORIES}
    # images 1 and 3 are labelled with their masked prediction (among two labels), 2 and 4 with another category
    labels = [[predictions[FILES[0]], 999], [other[predictions[FILES[1]]]], [predictions[FILES[2]]],
              [other[predictions[FILES[3]]]]]
    records = [{"image": f, "labels": lab, "flaws": v} for f, lab, v in zip(FILES, labels, VOTES, strict=True)]
    (public_root / "annotations.json").write_text(json.dumps(_annotations(records)))
    dataset = create_dataset("vizwiz", data_root=public_root, preprocess=SMALL)
    assert dataset.cells() == [Cell("all", 0), Cell("flag_BLR", 0), Cell("flag_DRK", 0), Cell("flag_NON", 0)]
    assert accuracy(dataset, predictions.items()) == {"all": 0.5, "flag_BLR": 1.0, "flag_DRK": 1.0, "flag_NON": 0.0}

    config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], dataset="vizwiz", data_root=public_root,
                         resize=64, crop=64, workers=0, device="cpu", out=tmp_path / "run", progress=False)
    rows = run_suite(config).set_index("corruption")
    assert rows.loc["all", "n"] == 4 and rows.loc["flag_BLR", "n"] == 2 and rows.loc["flag_NON", "n"] == 2
    assert rows["top1"].to_dict() == {"all": 0.5, "flag_BLR": 1.0, "flag_DRK": 1.0, "flag_NON": 0.0}
    assert set(rows["severity"]) == {0} and set(rows["dataset"]) == {"vizwiz"}
    # decoded on the device (here torchvision's CPU decoder): the same counts
    on_device = run_suite(replace(config, decode="device", out=tmp_path / "device")).set_index("corruption")
    assert set(on_device["decode"]) == {"device"}
    assert on_device["n"].to_dict() == rows["n"].to_dict()
    assert (on_device["top1"] - rows["top1"]).abs().max() <= 0.25  # one of 4 images at most


def test_counter_accepts_label_sets():
    counter = CellCounter()
    logits = torch.tensor([[0.0, 5.0, 1.0, 0.5], [3.0, 0.0, 1.0, 2.0]])
    counter.update(logits, torch.tensor([[2, 1], [3, -1]]))
    assert (counter.n, counter.top1, counter.top5) == (2, 1, 2)


def test_clear_errors(tmp_path: Path):
    with pytest.raises(DataError, match="needs --data-root"):
        create_dataset("vizwiz")
    with pytest.raises(DataError, match="no VizWiz-Classification annotations.json"):
        create_dataset("vizwiz", data_root=tmp_path)
    (tmp_path / "annotations.json").write_text(json.dumps({"images": ["a.jpg"], "categories": [{"id": 1000}]}))
    with pytest.raises(DataError, match="ImageNet-1k indices"):
        create_dataset("vizwiz", data_root=tmp_path)
