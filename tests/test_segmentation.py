"""Semantic segmentation: metrics, label mapping, the official layouts, the Segmenter and run_suite end to end.

The synthetic data encode a known prediction in the images' red channel (``R = 12 x class``) and a chosen ground
truth in the label maps; the registered ``test_colour_oracle`` segmenter reads the class back from the red
channel, so every confusion matrix is known by construction.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from robustbench_sympie.datasets import create_dataset
from robustbench_sympie.datasets.cityscapes_labels import CITYSCAPES_CLASSES, LABEL_IDS_OF_TRAIN_IDS, LABEL_TO_TRAIN
from robustbench_sympie.enhancers import ENHANCERS, Enhancer
from robustbench_sympie.errors import DataError, SuiteError, WeightsNotFoundError
from robustbench_sympie.metrics import (
    METRICS,
    ConfusionMatrix,
    decode_confusion,
    encode_confusion,
    iou,
    miou,
    pixel_accuracy,
    sum_confusions,
)
from robustbench_sympie.models import MODELS, create_model
from robustbench_sympie.models.segmenter import Segmenter, window_starts
from robustbench_sympie.runner import SuiteConfig, run_suite
from robustbench_sympie.tasks import SegmentationCounter

H, W, K, STEP = 32, 64, 19, 12  # tiny "Cityscapes" images: 64 x 32, 19 classes, R = STEP * class


class ColourOracle(nn.Module):
    """Predicts the class encoded in the red channel (one-hot logits); pixel-wise, so windows change nothing."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        classes = torch.round(x[:, 0] * 255 / STEP).clamp(0, K - 1).long()
        return {"out": F.one_hot(classes, K).permute(0, 3, 1, 2).float()}


def colour_oracle(weights: str | None = None, window: int | None = None, stride: int | None = None) -> Segmenter:
    return Segmenter(ColourOracle(), name="test_colour_oracle", num_classes=K, mean=(0, 0, 0), std=(1, 1, 1),
                     window=window, stride=stride)


MODELS.add("test_colour_oracle", colour_oracle, overwrite=True)


class ShiftTopHalf(Enhancer):
    """Moves the top half of every image one class up (red + 12): damage known by construction."""

    name = "test_shift_top_half"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = images.clone()
        out[:, 0, : images.shape[2] // 2] = (out[:, 0, : images.shape[2] // 2] + STEP / 255).clamp(max=1)
        return out


ENHANCERS.add("test_shift_top_half", ShiftTopHalf, overwrite=True)


# ------------------------------------------------------------------------------------------------
# synthetic data in the official layouts
# ------------------------------------------------------------------------------------------------
def maps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ground truth) train-id maps: blocks of classes, some ground truth changed and some ignored."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, K, size=(4, 8))
    pred = np.kron(blocks, np.ones((H // 4, W // 8), dtype=np.int64))
    gt = pred.copy()
    wrong = rng.random((H, W)) < 0.2
    gt[wrong] = rng.integers(0, K, size=int(wrong.sum()))
    gt[:, :2] = 255  # a void border
    return pred, gt


def image_of(pred: np.ndarray) -> np.ndarray:
    image = np.zeros((H, W, 3), dtype=np.uint8)
    image[..., 0] = pred * STEP
    image[..., 1], image[..., 2] = 90, 30
    return image


def to_label_ids(gt: np.ndarray) -> np.ndarray:
    """Train ids -> Cityscapes label ids (255 -> 0, 'unlabeled')."""
    ids = np.zeros_like(gt)
    valid = gt != 255
    ids[valid] = np.asarray(LABEL_IDS_OF_TRAIN_IDS)[gt[valid]]
    return ids


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def numpy_confusion(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """An independent confusion matrix: a Python loop over the labelled pixels."""
    matrix = np.zeros((K, K), dtype=np.int64)
    for pred, gt in pairs:
        for t, p in zip(gt.ravel(), pred.ravel(), strict=True):
            if t != 255:
                matrix[t, p] += 1
    return matrix


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Three 64 x 32 val images in two cities; returns the root and the expected confusion matrix."""
    root = tmp_path / "cityscapes"
    pairs = []
    for i, (city, frame) in enumerate([("frankfurt", "000000_000294"), ("frankfurt", "000001_005184"),
                                       ("lindau", "000000_000019")]):
        pred, gt = maps(i)
        save(root / "leftImg8bit/val" / city / f"{city}_{frame}_leftImg8bit.png", image_of(pred))
        save(root / "gtFine/val" / city / f"{city}_{frame}_gtFine_labelIds.png", to_label_ids(gt))
        pairs.append((pred, gt))
    return root, numpy_confusion(pairs)


@pytest.fixture
def acdc_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "acdc"
    expected = {}
    for c, condition in enumerate(("fog", "night", "rain", "snow")):
        pairs = []
        for j in range(2):
            pred, gt = maps(10 + 2 * c + j)
            stem = f"GOPR04{c}{j}_frame_0000{j}1"
            save(root / "rgb_anon" / condition / "val" / f"GOPR04{c}{j}" / f"{stem}_rgb_anon.png", image_of(pred))
            save(root / "gt" / condition / "val" / f"GOPR04{c}{j}" / f"{stem}_gt_labelTrainIds.png", gt)
            pairs.append((pred, gt))
        expected[condition] = numpy_confusion(pairs)
    return root, expected


@pytest.fixture
def dark_zurich_root(tmp_path: Path) -> tuple[Path, np.ndarray]:
    root = tmp_path / "dark_zurich"
    pred, gt = maps(42)
    save(root / "rgb_anon/val/night/GOPR0356/GOPR0356_frame_000321_rgb_anon.png", image_of(pred))
    save(root / "gt/val/night/GOPR0356/GOPR0356_frame_000321_gt_labelTrainIds.png", gt)
    return root, numpy_confusion([(pred, gt)])


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------
def test_confusion_matrix_by_hand() -> None:
    """One 2 x 4 image: road/car with one void pixel; the matrix, IoUs and pixel accuracy worked out by hand."""
    pred = torch.tensor([[[0, 0, 13, 13], [0, 0, 13, 13]]])
    gt = torch.tensor([[[255, 0, 13, 13], [0, 0, 0, 13]]])
    cm = ConfusionMatrix(K)
    cm.update(pred, gt)
    m = cm.numpy()
    assert m[0, 0] == 3 and m[0, 13] == 1 and m[13, 13] == 3 and m.sum() == 7
    # road: I = 3, U = 3 + 1 = 4; car: I = 3, U = 3 + 1 = 4
    assert iou(m)[0] == pytest.approx(3 / 4) and iou(m)[13] == pytest.approx(3 / 4)
    assert np.isnan(iou(m)[1])  # absent classes are left out of the mean
    assert miou(m) == pytest.approx(3 / 4)
    assert pixel_accuracy(m) == pytest.approx(6 / 7)


def test_confusion_matrix_matches_independent_computation() -> None:
    pairs = [maps(i) for i in range(4)]
    cm = ConfusionMatrix(K)
    per_image = cm.update(torch.from_numpy(np.stack([p for p, _ in pairs])),
                          torch.from_numpy(np.stack([g for _, g in pairs])))
    expected = numpy_confusion(pairs)
    np.testing.assert_array_equal(cm.numpy(), expected)
    np.testing.assert_array_equal(per_image[2].numpy(), numpy_confusion([pairs[2]]))
    # per-class IoU with numpy set operations on the same arrays
    for c in range(K):
        inter = sum(((g == c) & (p == c)).sum() for p, g in pairs)
        union = sum((((g == c) | (p == c)) & (g != 255)).sum() for p, g in pairs)
        assert (np.isnan(iou(expected)[c]) and union == 0) or iou(expected)[c] == pytest.approx(inter / union)
    try:
        from sklearn.metrics import confusion_matrix
    except ImportError:
        return
    gt = np.concatenate([g.ravel() for _, g in pairs])
    pred = np.concatenate([p.ravel() for p, _ in pairs])
    np.testing.assert_array_equal(confusion_matrix(gt[gt != 255], pred[gt != 255], labels=range(K)), expected)


def test_pooling_two_cells_equals_one_big_cell() -> None:
    pairs = [maps(i) for i in range(4)]
    first, second, whole = SegmentationCounter(), SegmentationCounter(), SegmentationCounter()
    logits = [F.one_hot(torch.from_numpy(p), K).permute(2, 0, 1).float()[None] for p, _ in pairs]
    targets = [torch.from_numpy(g)[None] for _, g in pairs]
    for i in range(4):
        (first if i < 2 else second).update(logits[i], targets[i])
        whole.update(logits[i], targets[i])
    pooled = sum_confusions([first.columns()["confusion"], second.columns()["confusion"]])
    np.testing.assert_array_equal(pooled, whole.matrix())
    assert METRICS.get("miou")({"confusion": encode_confusion(pooled)}) == pytest.approx(whole.columns()["miou"])


def test_confusion_text_round_trip_and_metric_registry() -> None:
    matrix = numpy_confusion([maps(3)])
    np.testing.assert_array_equal(decode_confusion(encode_confusion(matrix)), matrix)
    assert {"top1", "top5", "miou", "pixel_acc"} <= set(METRICS.names())
    assert METRICS.get("top1")({"n": 4, "n_correct_top1": 3}) == 0.75
    with pytest.raises(DataError):
        decode_confusion("not a matrix")


# ------------------------------------------------------------------------------------------------
# labels and layouts
# ------------------------------------------------------------------------------------------------
def test_label_id_to_train_id_mapping() -> None:
    assert len(CITYSCAPES_CLASSES) == 19
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
                27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for label_id in range(256):
        assert LABEL_TO_TRAIN[label_id] == expected.get(label_id, 255), label_id
    assert CITYSCAPES_CLASSES[LABEL_TO_TRAIN[26]] == "car"


def test_cityscapes_layout_and_targets(cityscapes_root) -> None:
    root, _ = cityscapes_root
    dataset = create_dataset("cityscapes", data_root=root)
    assert dataset.cells() == [("clean", 0)] and dataset.n_images == 3 and dataset.task == "segmentation"
    sample = dataset.cell_dataset(dataset.cells()[0])[0]
    assert sample.error == "" and sample.image.shape == (3, H, W) and sample.target.dtype == torch.int64
    assert sample.image_id == "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    np.testing.assert_array_equal(sample.target.numpy(), maps(0)[1])  # label ids read back as train ids


def test_layout_errors_name_what_is_missing(cityscapes_root, tmp_path: Path) -> None:
    root, _ = cityscapes_root
    label = next((root / "gtFine/val/lindau").iterdir())
    label.unlink()
    with pytest.raises(DataError, match=str(label).replace("\\", "\\\\")):
        create_dataset("cityscapes", data_root=root)
    for folder in (root / "gtFine/val").iterdir():
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    (root / "gtFine/val").rmdir()
    with pytest.raises(DataError, match=r"missing labels folder .*gtFine/val"):
        create_dataset("cityscapes", data_root=root)
    with pytest.raises(DataError, match=r"missing images folder .*rgb_anon/fog/val"):
        create_dataset("acdc", data_root=tmp_path)
    with pytest.raises(DataError, match="--data-root"):
        create_dataset("dark-zurich")


def test_acdc_and_dark_zurich_cells(acdc_root, dark_zurich_root) -> None:
    acdc = create_dataset("acdc", data_root=acdc_root[0])
    assert acdc.cells() == [("fog", 0), ("night", 0), ("rain", 0), ("snow", 0)] and acdc.n_images == 8
    assert create_dataset("acdc", data_root=acdc_root[0], corruptions="night,snow").cells() == [("night", 0),
                                                                                                 ("snow", 0)]
    dz = create_dataset("dark-zurich", data_root=dark_zurich_root[0])
    assert dz.cells() == [("night", 0)]
    assert dz.cell_dataset(dz.cells()[0])[0].target.max() == 255  # train ids read as stored


def test_cityscapes_c_corrupts_at_full_resolution_with_per_image_seeds(cityscapes_root) -> None:
    root, _ = cityscapes_root
    dataset = create_dataset("cityscapes-c", data_root=root, corruptions="clean,gaussian_noise", severities=[3])
    assert dataset.cells() == [("clean", 0), ("gaussian_noise", 3)]
    clean = dataset.cell_dataset(dataset.cells()[0])[1]
    noisy = dataset.cell_dataset(dataset.cells()[1])[1]
    again = create_dataset("cityscapes-c", data_root=root, corruptions="gaussian_noise", severities=[3])
    assert noisy.image.shape == clean.image.shape == (3, H, W)
    assert not torch.equal(noisy.image, clean.image) and torch.equal(noisy.target, clean.target)
    assert torch.equal(again.cell_dataset(again.cells()[0])[1].image, noisy.image)


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------
def test_sliding_window_averages_overlaps_and_matches_full_image_for_a_pixelwise_net() -> None:
    torch.manual_seed(0)
    net = nn.Conv2d(3, K, 1)
    images = torch.rand(2, 3, 40, 70)
    full = Segmenter(net, name="conv", num_classes=K)(images)
    windowed = Segmenter(net, name="conv", num_classes=K, window=(32, 48), stride=(16, 20))(images)
    assert windowed.shape == full.shape == (2, K, 40, 70)
    torch.testing.assert_close(windowed, full, rtol=1e-5, atol=1e-5)
    big_window = Segmenter(net, name="conv", num_classes=K, window=64)(images)  # padded image, cropped back
    torch.testing.assert_close(big_window, full, rtol=1e-5, atol=1e-5)
    assert window_starts(70, 48, 20) == [0, 20, 22] and window_starts(30, 48, 20) == [0]


def test_segmenter_resizes_low_resolution_logits_to_the_input() -> None:
    net = nn.Conv2d(3, K, 3, stride=8, padding=1)  # output stride 8
    out = Segmenter(net, name="os8", num_classes=K)(torch.rand(1, 3, H, W))
    assert out.shape == (1, K, H, W)


def test_torchvision_segmenter_needs_cityscapes_weights(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="Cityscapes-trained weights"):
        create_model("lraspp_mobilenet_v3_large")
    with pytest.raises(WeightsNotFoundError, match="Pascal VOC"):
        create_model("fcn_resnet50", weights="DEFAULT")
    from robustbench_sympie.models.segmentation import torchvision_segmentation_net

    path = tmp_path / "lraspp_cityscapes.pth"
    torch.save(torchvision_segmentation_net("lraspp_mobilenet_v3_large", 19).state_dict(), path)
    model = create_model(f"lraspp_mobilenet_v3_large:weights={path}:window=32:stride=16")
    assert model.task == "segmentation" and model.window == (32, 32) and model.stride == (16, 16)
    assert model(torch.rand(1, 3, H, W)).shape == (1, 19, H, W)


# ------------------------------------------------------------------------------------------------
# run_suite end to end
# ------------------------------------------------------------------------------------------------
def _config(root: Path, out: Path, **kwargs) -> SuiteConfig:
    return SuiteConfig(**{"enhancers": ("identity",), "models": ("test_colour_oracle",), "dataset": "cityscapes",
                          "data_root": root, "out": out, "batch_size": 2, "workers": 0, "device": "cpu",
                          "progress": False, **kwargs})


def test_run_suite_cityscapes_writes_miou(cityscapes_root, tmp_path: Path) -> None:
    root, expected = cityscapes_root
    frame = run_suite(_config(root, tmp_path / "out"))
    on_disk = pd.read_csv(tmp_path / "out/results.csv")
    assert len(on_disk) == 1
    row = on_disk.iloc[0]
    assert row["task"] == "segmentation" and row["n"] == 3 and row["n_pixels"] == expected.sum()
    np.testing.assert_array_equal(decode_confusion(row["confusion"]), expected)
    assert row["miou"] == pytest.approx(miou(expected)) and row["pixel_acc"] == pytest.approx(
        pixel_accuracy(expected))
    assert 0 < row["miou"] < 1 and np.isnan(row["top1"])
    assert len(frame) == 1


def test_run_suite_sliding_window_and_untrained_sympie_match_identity(cityscapes_root, tmp_path: Path) -> None:
    """Untrained SyMPIE is the identity warp (its NEM on a resized copy, the warp at full size)."""
    root, expected = cityscapes_root
    frame = run_suite(_config(root, tmp_path / "out", enhancers=("identity", "sympie"), allow_untrained=True,
                              models=("test_colour_oracle:window=32:stride=16",)))
    assert len(frame) == 2
    for confusion in frame["confusion"]:
        np.testing.assert_array_equal(decode_confusion(confusion), expected)


def test_run_suite_acdc_one_row_per_condition(acdc_root, tmp_path: Path) -> None:
    root, expected = acdc_root
    frame = run_suite(_config(root, tmp_path / "out", dataset="acdc"))
    assert list(frame["corruption"]) == ["fog", "night", "rain", "snow"]
    for _, row in frame.iterrows():
        np.testing.assert_array_equal(decode_confusion(row["confusion"]), expected[row["corruption"]])


def test_run_suite_refuses_a_classifier_on_a_segmentation_set(cityscapes_root, tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="segmentation dataset"):
        run_suite(_config(cityscapes_root[0], tmp_path / "out", models=("tiny_test_model",)))


# ------------------------------------------------------------------------------------------------
# leaderboards and command lines
# ------------------------------------------------------------------------------------------------
def test_leaderboard_tables_pool_confusions_and_deltas(acdc_root, tmp_path: Path) -> None:
    from robustbench_sympie.segmentation_report import (
        condition_table,
        deltas_vs_baseline,
        per_class_iou,
        publish_segmentation,
    )

    root, expected = acdc_root
    results = run_suite(_config(root, tmp_path / "out", dataset="acdc", enhancers=("identity", "sympie"),
                                allow_untrained=True))
    table = condition_table(results).set_index("enhancer @ model")
    for condition, matrix in expected.items():
        assert table.loc["identity @ test_colour_oracle", condition] == pytest.approx(100 * miou(matrix))
    everything = sum(expected.values())
    assert table.loc["identity @ test_colour_oracle", "all (pooled)"] == pytest.approx(100 * miou(everything))
    assert table.loc["identity @ test_colour_oracle", "mean of cells"] == pytest.approx(
        100 * np.mean([miou(m) for m in expected.values()]))
    deltas = deltas_vs_baseline(results, ("corruption",))
    assert list(deltas["enhancer"].unique()) == ["sympie[untrained]"] and (deltas["delta_miou_pts"] == 0).all()
    classes = per_class_iou(results)
    assert classes.loc[0, "road"] == pytest.approx(100 * iou(expected["fog"])[0], nan_ok=True)
    written = publish_segmentation(results, tmp_path / "board")
    names = {p.name for p in written}
    assert {"segmentation.md", "segmentation_conditions.csv", "segmentation_flops.csv"} <= names
    flops = pd.read_csv(tmp_path / "board/segmentation_flops.csv").set_index("name")
    assert flops.loc["sympie[untrained]", "gflops"] > 0 and flops.loc["sympie[untrained]", "resolution"] == "2048x1024"
    assert "Δ mIoU" in (tmp_path / "board/segmentation.md").read_text()


def test_segmentation_flops_at_2048x1024() -> None:
    from robustbench_sympie.segmentation_report import segmentation_flops

    models = ["lraspp_mobilenet_v3_large:weights=x.pth", "test_colour_oracle", "no_such_segmenter"]
    table = segmentation_flops(models, ()).set_index("name")
    assert table.loc[models[0], "gflops"] > 1 and table.loc[models[0], "resolution"] == "2048x1024"
    assert table.loc["test_colour_oracle", "gflops"] == 0  # no multiply-adds
    assert np.isnan(table.loc["no_such_segmenter", "gflops"])
    assert "not counted" in table.loc["no_such_segmenter", "note"]


def test_command_lines_end_to_end(cityscapes_root, tmp_path: Path) -> None:
    from robustbench_sympie.cli import publish_leaderboard
    from robustbench_sympie.cli import run_suite as run_suite_cli

    root, expected = cityscapes_root
    out = tmp_path / "run"
    assert run_suite_cli.main(["--dataset", "cityscapes-c", "--data-root", str(root), "--model", "test_colour_oracle",
                               "--enhancer", "identity", "--corruptions", "clean,gaussian_noise", "--severities", "1",
                               "--out", str(out), "--workers", "0", "--device", "cpu", "--no-progress",
                               "--batch-size", "2"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results["corruption"]) == ["clean", "gaussian_noise"]
    np.testing.assert_array_equal(decode_confusion(results.loc[0, "confusion"]), expected)
    assert "mIoU" in (out / "summary.md").read_text()
    assert publish_leaderboard.main([str(out / "results.csv"), "--out", str(tmp_path / "board")]) == 0
    text = (tmp_path / "board/segmentation.md").read_text()
    assert "gaussian_noise" in text and "mIoU per corruption x severity" in text
    readme = (tmp_path / "board/README.md").read_text()  # every published folder says how it was made
    assert "publish_leaderboard" in readme and "- `segmentation.md`" in readme and "miou" in readme


def test_per_image_records_and_paired_deltas(cityscapes_root, tmp_path: Path) -> None:
    from robustbench_sympie.segmentation_report import (
        deltas_vs_baseline,
        load_segmentation_records,
        paired_deltas,
        publish_segmentation,
    )

    root, expected = cityscapes_root
    out = tmp_path / "out"
    results = run_suite(_config(root, out, enhancers=("identity", "test_shift_top_half")))
    records = load_segmentation_records(out)
    assert len(records) == 6 and (out / "segmentation_records").is_dir() and not (out / "records").exists()
    identity = records[records["enhancer"] == "identity"]
    np.testing.assert_array_equal(sum(decode_confusion(c) for c in identity["confusion"]), expected)
    # the shifted enhancer, computed independently: top half predicted one class up (capped at 18)
    shifted = []
    for i in range(3):
        pred, gt = maps(i)
        pred = pred.copy()
        pred[: H // 2] = np.minimum(pred[: H // 2] + 1, K - 1)
        shifted.append((pred, gt))
    row = results.set_index("enhancer").loc["test_shift_top_half"]
    np.testing.assert_array_equal(decode_confusion(row["confusion"]), numpy_confusion(shifted))
    paired = paired_deltas(records, ("corruption",))
    unpaired = deltas_vs_baseline(results, ("corruption",))
    assert paired.loc[0, "n_images"] == 3
    assert paired.loc[0, "delta_miou_pts"] == pytest.approx(unpaired.loc[0, "delta_miou_pts"])
    assert paired.loc[0, "delta_miou_pts"] == pytest.approx(100 * (miou(numpy_confusion(shifted)) - miou(expected)))
    assert paired.loc[0, "ci_low_pts"] <= paired.loc[0, "delta_miou_pts"] <= paired.loc[0, "ci_high_pts"] < 0
    per_image = [miou(numpy_confusion([s])) - miou(numpy_confusion([maps(i)])) for i, s in enumerate(shifted)]
    assert paired.loc[0, "mean_image_delta_pts"] == pytest.approx(100 * np.mean(per_image))
    assert paired.loc[0, "n_worse"] == sum(d < 0 for d in per_image)
    names = {p.name for p in publish_segmentation(results, tmp_path / "board", records=records)}
    assert "segmentation_deltas_paired.csv" in names


def test_cityscapes_c_torch_backend_corrupts_batches_on_the_device(cityscapes_root, tmp_path: Path) -> None:
    root, expected = cityscapes_root
    frame = run_suite(_config(root, tmp_path / "out", dataset="cityscapes-c", corruptions="clean,gaussian_noise",
                              severities=(5,), corruption_backend="torch"))
    assert list(frame["corruption_backend"]) == ["torch", "torch"]
    clean, noisy = (decode_confusion(c) for c in frame["confusion"])
    np.testing.assert_array_equal(clean, expected)
    assert noisy.sum() == expected.sum() and miou(noisy) < miou(expected)  # same pixels counted, noise hurts


# ------------------------------------------------------------------------------------------------
# training SyMPIE against a frozen segmenter
# ------------------------------------------------------------------------------------------------
def conv_segmenter(weights: str | None = None) -> Segmenter:
    """A fixed random 1 x 1 convolution: differentiable, so SyMPIE can be trained against it."""
    gen = torch.Generator().manual_seed(0)
    net = nn.Conv2d(3, K, 1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return Segmenter(net, name="test_conv_segmenter", num_classes=K)


MODELS.add("test_conv_segmenter", conv_segmenter, overwrite=True)


def test_segmentation_training_samples_crop_image_and_labels_together(cityscapes_root) -> None:
    from robustbench_sympie.datasets.segmentation import CITYSCAPES_VAL
    from robustbench_sympie.training.segmentation import PairedRandomCrop, SegmentationTrainingSet

    root, _ = cityscapes_root
    val = CITYSCAPES_VAL.records(root)
    dataset = SegmentationTrainingSet(val, ["gaussian_noise"], seed=0, geometry=PairedRandomCrop(32, 24),
                                      severities=(0,))  # shorter side 32: no resizing, so crops are exact
    for number in range(6):
        index = number % 3
        image, labels = dataset[(number, index)]
        assert image.shape == (3, 24, 24) and labels.shape == (24, 24) and labels.dtype == torch.int64
        pred, gt = maps(index)
        gt = np.where(gt == 255, -100, gt)
        windows = [(top, left) for top in range(H - 23) for left in range(W - 23)
                   if np.array_equal(image[0].numpy(), pred[top:top + 24, left:left + 24] * STEP)]
        assert windows and any(np.array_equal(labels.numpy(), gt[t:t + 24, x:x + 24]) for t, x in windows)
    resized_image, resized_labels = SegmentationTrainingSet(val, ["gaussian_noise"], seed=0, severities=(3,),
                                                            geometry=PairedRandomCrop(48, 40))[(0, 0)]
    assert resized_image.shape == (3, 40, 40) and resized_labels.shape == (40, 40)


def test_train_sympie_against_a_frozen_segmenter(cityscapes_root, tmp_path: Path) -> None:
    from robustbench_sympie.training.config import TrainConfig
    from robustbench_sympie.training.segmentation import train_segmentation

    root, _ = cityscapes_root
    for folder in ("leftImg8bit", "gtFine"):  # the same images as a train split
        shutil.copytree(root / folder / "val", root / folder / "train")
    config = TrainConfig(out=tmp_path / "train", data_root=root, model="test_conv_segmenter", iterations=3,
                         batch_size=2, eval_every=3, checkpoint_every=0, workers=0, device="cpu", amp=False,
                         corruptions="gaussian_noise,brightness", resize=48, crop=48, progress=False)
    result = train_segmentation(config)
    assert result.finished and result.ema_weights is not None and result.ema_weights.is_file()
    first, last = result.evaluations[0], result.evaluations[-1]
    assert first["step"] == 0 and last["step"] == 3
    assert first["enhanced"] == first["corrupted"] and first["enhanced_clean"] == first["clean"]  # untrained = identity
    assert all(0 <= last[k] <= 100 for k in ("clean", "corrupted", "enhanced", "enhanced_ema", "enhanced_clean"))


def test_train_sympie_cli_segmentation_task(cityscapes_root, tmp_path: Path, capsys) -> None:
    from robustbench_sympie.cli import train_sympie

    root, _ = cityscapes_root
    for folder in ("leftImg8bit", "gtFine"):
        shutil.copytree(root / folder / "val", root / folder / "train")
    assert train_sympie.main(["--task", "segmentation", "--data-root", str(root), "--model", "test_conv_segmenter",
                              "--out", str(tmp_path / "t"), "--iterations", "2", "--batch-size", "2",
                              "--eval-every", "2", "--workers", "0", "--device", "cpu", "--image-size", "48",
                              "--resize", "48", "--no-progress"]) == 0
    assert "held-out mIoU" in capsys.readouterr().out
    assert (tmp_path / "t/sympie_ema.safetensors").is_file()
