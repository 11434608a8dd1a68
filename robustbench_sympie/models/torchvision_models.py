"""Every torchvision ImageNet classification model, by name, with its multi-weight API.

``create_model("resnet50")`` uses the architecture's default weights; ``weights="IMAGENET1K_V1"``
(or ``"V1"``) picks another published set; ``weights="path/to/file.pth"`` loads a local state dict
(normalised with the ImageNet statistics). The normalisation comes from the weights' own transforms.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..weights_hub import WeightsFile, load_state_dict
from .base import IMAGENET_MEAN, IMAGENET_STD, Classifier
from .registry import MODELS
from .state_dict_check import load_state_dict_checked


def _resolve_enum(name: str, weights: str):
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    members = {m.name: m for m in enum}
    key = weights.upper()
    for candidate in (key, f"IMAGENET1K_{key}"):
        if candidate == "DEFAULT":
            return enum.DEFAULT
        if candidate in members:
            return members[candidate]
    raise WeightsNotFoundError(
        f"Unknown weights {weights!r} for model {name!r}: expected one of {['DEFAULT', *members]} "
        "or the path of a local state-dict file"
    )


def build_torchvision_model(name: str, weights: str | os.PathLike | None = None) -> Classifier:
    """Build torchvision model ``name`` with named weights (default: ``DEFAULT``) or a local file."""
    import torchvision.models as tvm

    weights = "DEFAULT" if weights is None else weights
    if isinstance(weights, os.PathLike) or Path(str(weights)).suffix in {".pth", ".pt", ".safetensors"}:
        net = tvm.get_model(name, weights=None)
        load_state_dict_checked(net, load_state_dict(weights, what=f"model {name!r}"), path=weights,
                                what=f"model {name!r}")
        return Classifier(net, name=name, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights=str(weights))

    entry = _resolve_enum(name, str(weights))
    WeightsFile.from_url(entry.url).fetch(  # torchvision then loads the cached file itself
        what=f"model {name!r} ({entry})",
        how_else=f"pass --weights /path/to/{os.path.basename(entry.url)} (create_model({name!r}, weights=PATH))",
    )
    net = tvm.get_model(name, weights=entry)
    transforms = entry.transforms()
    return Classifier(net, name=name, mean=transforms.mean, std=transforms.std, weights=str(entry))


def _register_all() -> None:
    import torchvision.models as tvm

    for name in tvm.list_models(module=tvm):
        MODELS.add(name, functools.partial(build_torchvision_model, name), source="torchvision.models")


_register_all()
