"""Tests of the SyMPIE enhancer: released-checkpoint compatibility, identity init, DWM, weights files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

try:
    from robustbench_sympie import create_enhancer
except ImportError:  # the top-level package exports may not exist yet
    from robustbench_sympie.enhancers import create_enhancer

from robustbench_sympie.enhancers import sympie_weights
from robustbench_sympie.enhancers.sympie import Sympie, SympieNEM, warp, warp_reference
from robustbench_sympie.enhancers.sympie_weights import (
    DataError,
    WeightsNotFoundError,
    load_nem_state_dict,
    save_nem_weights,
)
from robustbench_sympie.errors import WeightsFormatError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# -- a minimal, independent re-implementation of the released module (attribute names as released) ----------
class _RefBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(5, 4, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.conv1(self.pool(x))
        return x0 + F.relu(self.bn2(self.conv2(F.relu(self.bn1(x0)))))


class _RefNEM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        stem = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()]
        self.backbone = nn.Sequential(*stem, _RefBlock(64, 128), _RefBlock(128, 256), _RefBlock(256, 512))
        self.gpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out = nn.Linear(512, 37)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gpool(self.backbone(x)).flatten(1))


def _ref_pipeline(nem: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Released inference: NEM on the normalised image, per-image warp, masked channel clamp, then denormalised."""
    x = (images - MEAN) / STD
    col = nem(x)
    bs = x.shape[0]
    x = torch.einsum("bdhw,bdc->bchw", x + col[:, 9:12, None, None], col[:, :9].reshape(bs, 3, 3))
    kernels = col[:, 12:].reshape(bs, 1, 1, 5, 5).repeat(1, 3, 1, 1, 1)
    out = torch.zeros_like(x)
    for b in range(bs):
        out[b] = F.conv2d(x[b], kernels[b], padding=2, groups=3)
    lo, hi = -MEAN / STD, (1 - MEAN) / STD
    for c in range(3):
        xc = out[:, c]
        xc[xc < lo[0, c, 0, 0]] = lo[0, c, 0, 0]
        xc[xc > hi[0, c, 0, 0]] = hi[0, c, 0, 0]
    return out * STD + MEAN


def _random_released_nem(seed: int = 0) -> _RefNEM:
    """Random weights and BN statistics; the output layer is kept near the identity so the warp is not degenerate."""
    torch.manual_seed(seed)
    nem = _RefNEM()
    with torch.no_grad():
        for module in nem.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
        nem.out.weight.mul_(0.05)
        sharpen = torch.full((5, 5), -0.02)
        sharpen[2, 2] = 1.5  # a sharpening kernel: random images then leave the valid range and get clamped
        nem.out.bias.copy_(torch.cat([torch.eye(3).flatten(), torch.zeros(3), sharpen.flatten()]))
    return nem.eval()


@pytest.fixture(scope="module")
def released_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _RefNEM]:
    nem = _random_released_nem()
    path = tmp_path_factory.mktemp("ckpt") / "sympie.pth"
    torch.save(nem.state_dict(), path)
    return path, nem


# -- compatibility with the released checkpoints -----------------------------------------------------------
def test_released_layout_loads_and_matches_reference(released_checkpoint: tuple[Path, _RefNEM]) -> None:
    path, ref = released_checkpoint
    enhancer = create_enhancer("sympie", weights=path)
    assert isinstance(enhancer, Sympie)
    assert enhancer.has_weights and str(path) in enhancer.weights_description
    assert set(enhancer.nem.state_dict()) == set(ref.state_dict())
    torch.manual_seed(1)
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        expected = _ref_pipeline(ref, images)
        got = enhancer(images)
    assert not torch.allclose(expected, images, atol=1e-2)  # the warp really does something
    assert ((expected < 1e-6) | (expected > 1 - 1e-6)).float().mean() > 0.05  # and the clamp is exercised
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_loaded_checkpoint_keeps_shape_and_range(released_checkpoint: tuple[Path, _RefNEM]) -> None:
    enhancer = create_enhancer("sympie", weights=released_checkpoint[0])
    for shape in [(2, 3, 67, 93), (1, 3, 520, 600), (1, 3, 8, 30)]:
        images = torch.rand(shape)
        with torch.no_grad():
            out = enhancer(images)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert out.min() >= 0 and out.max() <= 1


def test_wrapped_and_prefixed_checkpoints_load(tmp_path: Path, released_checkpoint: tuple[Path, _RefNEM]) -> None:
    state = released_checkpoint[1].state_dict()
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = load_nem_state_dict(path)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


# -- identity at initialisation ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 224, 224), (3, 3, 67, 93), (1, 3, 520, 600), (2, 3, 20, 9)])
def test_untrained_is_identity(shape: tuple[int, ...]) -> None:
    enhancer = Sympie(weights=None)
    assert not enhancer.has_weights
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = enhancer(images)
    assert out.shape == images.shape
    assert (out - images).abs().max() < 1e-6


def test_train_mode_has_gradients_and_no_clamp() -> None:
    enhancer = Sympie(weights=None)
    with torch.no_grad():
        enhancer.nem.out.bias[9:12] = 10.0  # a large colour shift pushes every pixel above 1
    images = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert enhancer.eval()(images).max() <= 1
    out = enhancer.train()(images)
    assert out.min() > 1
    out.sum().backward()
    assert enhancer.nem.out.bias.grad is not None and enhancer.nem.out.bias.grad.abs().sum() > 0


# -- the DWM -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3, 32, 48), (1, 3, 17, 5)])
def test_batched_warp_matches_reference(shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=gen)
    params = torch.randn(shape[0], 37, generator=gen)
    torch.testing.assert_close(warp(x, params), warp_reference(x, params), atol=1e-5, rtol=0)


# -- weights files -----------------------------------------------------------------------------------------
def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = SympieNEM().state_dict()
    del state["backbone.3.conv1.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(DataError) as info:
        create_enhancer("sympie", weights=path)
    message = str(info.value)
    assert str(path) in message and "backbone.3.conv1.weight" in message and "extra.weight" in message


def test_nonexistent_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        Sympie(weights=path)
    with pytest.raises(WeightsNotFoundError, match="is a folder: give the weights file inside it"):
        load_nem_state_dict(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="an empty path was given"):
        load_nem_state_dict("")


def test_safetensors_round_trip_with_sidecar(tmp_path: Path, released_checkpoint: tuple[Path, _RefNEM]) -> None:
    nem = SympieNEM()
    nem.load_state_dict(released_checkpoint[1].state_dict())
    path = save_nem_weights(nem, tmp_path / "nem.safetensors", {"downstream_model": "resnet50", "iterations": 7})
    sidecar = json.loads((tmp_path / "nem.safetensors.json").read_text())
    assert sidecar["downstream_model"] == "resnet50" and sidecar["iterations"] == 7
    assert {"training_data", "git_commit", "sha256"} <= set(sidecar)
    loaded = load_nem_state_dict(path)
    assert all(torch.equal(loaded[k], v) for k, v in nem.state_dict().items())


def test_fp16_save_loads_back_close(tmp_path: Path, released_checkpoint: tuple[Path, _RefNEM]) -> None:
    nem = SympieNEM()
    nem.load_state_dict(released_checkpoint[1].state_dict())
    path = save_nem_weights(nem, tmp_path / "nem16.pth", {}, half=True)
    loaded = load_nem_state_dict(path)
    for key, value in nem.state_dict().items():
        assert loaded[key].dtype == value.dtype
        torch.testing.assert_close(loaded[key], value, atol=1e-2, rtol=1e-3)


# -- named weights entries ---------------------------------------------------------------------------------
def test_offline_download_error_names_cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBUSTBENCH_SYMPIE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # the one weights cache: $TORCH_HOME/hub/checkpoints
    with pytest.raises(WeightsNotFoundError) as info:
        Sympie(downstream_model="resnet50")
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / "sympie.pth") in message and "zenodo.org" in message
    assert "10930713" in message and "--enhancer-weights" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cached_released_entry_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, released_checkpoint: tuple[Path, _RefNEM]
) -> None:
    monkeypatch.setenv("ROBUSTBENCH_SYMPIE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "sympie.pth").write_bytes(released_checkpoint[0].read_bytes())
    enhancer = Sympie(downstream_model="resnet50")
    assert enhancer.has_weights and "RESNET50_V2_RELEASED" in enhancer.weights_description
    assert Sympie(weights="RESNET50_V2_RELEASED").has_weights


def test_download_is_atomic_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBUSTBENCH_SYMPIE_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = tmp_path / "remote.pth"
    source.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    entry = sympie_weights.SympieWeightsEntry("LOCAL", "resnet50", source.as_uri(), "local.pth", sha256=sha)
    assert entry.resolve().read_bytes() == b"weights"
    bad = sympie_weights.SympieWeightsEntry("BAD", "resnet50", source.as_uri(), "bad.pth", sha256="0" * 64)
    with pytest.raises(WeightsFormatError, match="SHA-256"):
        bad.resolve()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert sorted(p.name for p in cache.iterdir()) == ["local.pth"]  # no partial or mismatched file left


def test_missing_packaged_default_falls_back_with_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sympie_weights, "PACKAGED_DIR", tmp_path)
    with pytest.warns(UserWarning, match="EFFICIENTNET_LITE0_SAMPLE"):
        enhancer = Sympie(downstream_model="efficientnet_lite0")
    assert not enhancer.has_weights
    with pytest.raises(WeightsNotFoundError):
        Sympie(weights="EFFICIENTNET_LITE0_SAMPLE")


def test_packaged_efficientnet_lite0_checkpoint_is_the_default() -> None:
    entry = sympie_weights.EFFICIENTNET_LITE0_SAMPLE
    path = entry.local_path()
    assert path.is_file(), f"the packaged checkpoint is missing: {path}"
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["downstream_model"] == "efficientnet_lite0" and meta["n_train_images"] == 700
    enhancer = Sympie(downstream_model="efficientnet_lite0")  # strict key check on load
    assert enhancer.has_weights and "EFFICIENTNET_LITE0_SAMPLE" in enhancer.weights_description
    assert enhancer.nem.out.weight.abs().sum() > 0  # trained, not the identity initialisation
    images = torch.rand(2, 3, 96, 128)
    out = enhancer(images)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, images)

    from robustbench_sympie.cli.run_suite import default_enhancers

    assert default_enhancers(["efficientnet_lite0"]) == ["identity", "sympie"]
    assert default_enhancers(["efficientnet_lite0", "some_other_net"]) == ["identity"]


def test_unknown_downstream_model_is_untrained() -> None:
    enhancer = Sympie(downstream_model="some_other_net")
    assert not enhancer.has_weights and "untrained" in enhancer.weights_description


# -- size and cost -----------------------------------------------------------------------------------------
def test_nem_params_and_flops() -> None:
    nem = SympieNEM().eval()
    assert 4.6e6 <= sum(p.numel() for p in nem.parameters()) <= 4.75e6
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        nem(torch.zeros(1, 3, 224, 224))
    assert 1.9e9 <= counter.get_total_flops() <= 2.05e9
