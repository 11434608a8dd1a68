"""Models: efficientnet_lite0's normalisation on real images, torchvision names, weights and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustbench_sympie.datasets import Cell, collate_samples, create_dataset
from robustbench_sympie.errors import WeightsNotFoundError
from robustbench_sympie.models import IMAGENET_MEAN, IMAGENET_STD, create_model


@pytest.fixture(scope="module")
def lite0():
    return create_model("efficientnet_lite0")


def test_efficientnet_lite0_normalisation_is_the_tf_lite_one(lite0, demo_root: Path):
    """(p - 127) / 128 beats ImageNet mean/std on 48 real images (10.5 points of top-1 on all 800)."""
    dataset = create_dataset("imagenet-c", data_root=demo_root, corruptions="clean", limit=48)
    cell = dataset.cell_dataset(Cell("clean", 0))
    batch = collate_samples([cell[i] for i in range(len(cell))])
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    images = batch.images.float() / 255  # batches carry uint8; models take [0, 1]
    with torch.inference_mode():
        ours, imagenet = lite0(images), lite0.net((images - mean) / std)
    top1 = [(logits.argmax(1) == batch.targets).float().mean().item() for logits in (ours, imagenet)]
    nll = [torch.nn.functional.cross_entropy(logits, batch.targets).item() for logits in (ours, imagenet)]
    assert top1[0] >= 0.8 and top1[0] > top1[1]
    assert nll[0] < 0.6 * nll[1]


def test_classifier_is_frozen_and_takes_any_size(lite0):
    lite0.train()
    assert not lite0.training and not any(p.requires_grad for p in lite0.parameters())
    with torch.inference_mode():
        assert lite0(torch.rand(1, 3, 97, 131)).shape == (1, 1000)


def test_torchvision_weights_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("ROBUSTBENCH_SYMPIE_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        create_model("resnet50", weights="V1")
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth") in message
    assert "--weights" in message and "download.pytorch.org" in message
    with pytest.raises(WeightsNotFoundError, match="Unknown weights 'V7'.*IMAGENET1K_V2"):
        create_model("resnet50", weights="V7")


def test_torchvision_model_from_local_file_and_from_cache(tmp_path, monkeypatch):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    model = create_model("resnet18", weights=str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        expected = net.eval()((x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
            1, 3, 1, 1))
        assert torch.allclose(model(x), expected, atol=1e-4)
    # a file already in the torch hub cache is used without any download
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("ROBUSTBENCH_SYMPIE_OFFLINE", "1")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(net.state_dict(), cache / "resnet18-f37072fd.pth")
    cached = create_model("resnet18")
    assert "IMAGENET1K_V1" in cached.weights
    assert cached.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)
