"""Learned denoisers (DnCNN, DRUNet, NAFNet, Restormer, SCUNet, SwinIR, MPRNet), reached only through the registry.

No released weights are downloaded here: a state dict saved from a fresh instance stands in for the authors' file
(the loading path, wrappers and strict key check are what is tested, not the published accuracy).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustbench_sympie import create_enhancer, list_enhancers
from robustbench_sympie.enhancers import ENHANCERS
from robustbench_sympie.runner import SuiteConfig, SuiteError, run_suite

pytest.importorskip("deepinv", reason="the learned denoisers need the baselines extra (deepinv)")

LEARNED = ["dncnn", "drunet", "nafnet", "restormer", "scunet", "swinir", "mprnet"]


@pytest.fixture(scope="module")
def small_batch() -> torch.Tensor:
    """Two images at a size no architecture divides evenly (37 x 53)."""
    return torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def enhancers() -> dict[str, torch.nn.Module]:
    """One untrained instance of each (built once: SwinIR and MPRNet take a moment)."""
    return {name: create_enhancer(name).eval() for name in LEARNED}


def test_registered_through_entry_points():
    assert set(LEARNED) <= set(list_enhancers())
    for name in LEARNED:
        assert ENHANCERS.source(name).startswith("entry point baselines.learned"), name


@pytest.mark.parametrize("name", LEARNED)
def test_shape_range_and_untrained_flags(name: str, enhancers, small_batch: torch.Tensor):
    enhancer = enhancers[name]
    assert enhancer.requires_weights and not enhancer.has_weights and enhancer.weights_description == ""
    with torch.no_grad():
        out = enhancer(small_batch)
    assert out.shape == small_batch.shape and out.dtype == small_batch.dtype
    assert torch.isfinite(out).all()
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    hint = enhancer.weights_hint()
    assert enhancer.weights_file in hint and "--enhancer-weights" in hint


@pytest.mark.parametrize("name", LEARNED)
def test_saved_state_dict_round_trips(name: str, enhancers, small_batch: torch.Tensor, tmp_path: Path):
    source = enhancers[name]
    path = tmp_path / f"{name}.pth"
    # wrapped as the authors ship it, with a DataParallel prefix: both must be undone
    torch.save({"params": {f"module.{k}": v for k, v in source.network.state_dict().items()}}, path)
    loaded = create_enhancer(name, weights=path).eval()
    assert loaded.has_weights and loaded.weights_description == str(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(small_batch[:1]), source(small_batch[:1]))


@pytest.mark.parametrize("name", ["dncnn", "nafnet"])
def test_wrong_keys_name_the_file(name: str, enhancers, tmp_path: Path):
    state = dict(enhancers[name].network.state_dict())
    first = next(iter(state))
    state["not_a_layer.weight"] = state.pop(first)
    path = tmp_path / "wrong.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match="wrong.pth") as info:
        create_enhancer(name, weights=path)
    assert first in str(info.value) and "not_a_layer.weight" in str(info.value)


def test_missing_file_says_which_weights_to_get(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="NAFNet-SIDD-width32.pth"):
        create_enhancer("nafnet", weights=tmp_path / "absent.pth")


def test_dncnn_loads_the_kair_layout(enhancers, small_batch: torch.Tensor, tmp_path: Path):
    """KAIR's ``dncnn_color_blind.pth`` keys (``model.N``, the network predicts the noise) map onto deepinv's."""
    network = enhancers["dncnn"].network
    convs = [network.in_conv, *network.conv_list, network.out_conv]
    kair = {}
    for i, conv in enumerate(convs):
        sign = -1 if conv is network.out_conv else 1
        kair[f"model.{2 * i}.weight"], kair[f"model.{2 * i}.bias"] = sign * conv.weight, sign * conv.bias
    path = tmp_path / "dncnn_color_blind.pth"
    torch.save(kair, path)
    loaded = create_enhancer("dncnn", weights=path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(small_batch), enhancers["dncnn"](small_batch))


def test_nafnet_has_the_authors_key_layout(enhancers):
    """The SIDD width-32 configuration: module names and the parameter count of the released model (29.1 M)."""
    state = enhancers["nafnet"].network.state_dict()
    assert {k.split(".")[0] for k in state} == {"intro", "encoders", "downs", "middle_blks", "ups", "decoders",
                                                "ending"}
    assert [len(e) for e in enhancers["nafnet"].network.encoders] == [2, 2, 4, 8]
    assert len(enhancers["nafnet"].network.middle_blks) == 12
    for key in ("encoders.0.0.norm1.weight", "encoders.0.0.sca.1.weight", "encoders.0.0.beta", "ups.0.0.weight",
                "middle_blks.11.conv5.bias", "decoders.3.1.gamma", "ending.bias"):
        assert key in state, key
    assert 29.0e6 < sum(v.numel() for v in state.values()) < 29.3e6


def test_run_suite_refuses_untrained_and_names_the_weights(few_images: Path, tmp_path: Path):
    config = SuiteConfig(enhancers=("nafnet",), models=("tiny_test_model",), data_root=few_images,
                         corruptions="clean", severities=(1,), limit=2, batch_size=2, workers=0, device="cpu",
                         out=tmp_path / "refused", progress=False)
    with pytest.raises(SuiteError, match="NAFNet-SIDD-width32.pth") as info:
        run_suite(config)
    assert "--allow-untrained" in str(info.value)


def test_run_suite_scores_loaded_weights_and_labels_untrained(few_images: Path, enhancers, tmp_path: Path):
    path = tmp_path / "nafnet.pth"
    torch.save({"params": enhancers["nafnet"].network.state_dict()}, path)
    common = dict(models=("tiny_test_model",), data_root=few_images, corruptions="clean",
                  severities=(1,), limit=2, batch_size=2, workers=0, device="cpu", progress=False)
    weighted = run_suite(SuiteConfig(enhancers=("nafnet",), enhancer_weights=str(path), out=tmp_path / "w", **common))
    assert set(weighted["enhancer"]) == {"nafnet"} and set(weighted["enhancer_weights"]) == {str(path)}
    untrained = run_suite(SuiteConfig(enhancers=("nafnet",), allow_untrained=True, out=tmp_path / "u", **common))
    assert set(untrained["enhancer"]) == {"nafnet[untrained]"}
