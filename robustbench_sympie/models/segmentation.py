"""Downstream semantic segmenters: a wrapper owning its normalisation, and torchvision's models by name.

:class:`Segmenter` takes RGB in [0, 1] at any resolution and returns ``B x C x H x W`` logits at the input
resolution, from one full-image pass or from a sliding window (logits averaged where windows overlap). Its
``task = "segmentation"`` makes the runner count a confusion matrix (see :mod:`..tasks`).

torchvision's published segmentation weights are trained on COCO with the 21 Pascal VOC classes, so they cannot be
scored on Cityscapes' 19 classes: the registered ``deeplabv3_resnet50``, ``fcn_resnet50``,
``lraspp_mobilenet_v3_large``, ... need ``weights=PATH``, a Cityscapes-trained state dict of that architecture
(``--model deeplabv3_resnet50:weights=ckpt.pth:window=1024:stride=768``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from torch import nn

from ..errors import WeightsNotFoundError
from ..weights_hub import load_state_dict
from .registry import MODELS
from .segmenter import CITYSCAPES_NUM_CLASSES, Segmenter
from .state_dict_check import load_state_dict_checked

#: torchvision segmentation architectures registered by name
TORCHVISION_SEGMENTERS: tuple[str, ...] = (
    "deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large", "fcn_resnet50", "fcn_resnet101",
    "lraspp_mobilenet_v3_large",
)
def torchvision_segmentation_net(name: str, num_classes: int, aux_loss: bool = False) -> nn.Module:
    """The untrained torchvision architecture ``name`` with ``num_classes`` outputs (no backbone download)."""
    import torchvision.models as tvm

    extra = {"aux_loss": True} if aux_loss else {}
    return tvm.get_model(name, weights=None, weights_backbone=None, num_classes=num_classes, **extra)


def build_torchvision_segmenter(name: str, weights: str | os.PathLike | None = None,
                                num_classes: int = CITYSCAPES_NUM_CLASSES, window: int | None = None,
                                stride: int | None = None) -> Segmenter:
    """torchvision segmenter ``name`` with a user's Cityscapes-trained state dict (``weights=PATH``)."""
    if weights is None or Path(str(weights)).suffix not in {".pth", ".pt", ".safetensors"}:
        raise WeightsNotFoundError(
            f"segmenter {name!r} needs Cityscapes-trained weights: pass {name}:weights=PATH (or --weights PATH), "
            f"a state dict of torchvision's {name} with num_classes={num_classes} (.pth/.pt/.safetensors). "
            f"torchvision's published weights{'' if weights is None else f' ({weights})'} are trained on the 21 "
            "Pascal VOC classes and cannot be scored on Cityscapes"
        )
    state = load_state_dict(weights, what=f"segmenter {name!r}")
    aux = any(k.startswith("aux_classifier.") for k in state)
    net = torchvision_segmentation_net(name, num_classes, aux_loss=aux)
    load_state_dict_checked(net, state, path=weights, what=f"segmenter {name!r} with num_classes={num_classes}")
    if aux:
        net.aux_classifier = None  # not used at inference
    return Segmenter(net, name=name, num_classes=num_classes, weights=str(weights), window=window, stride=stride)


for _name in TORCHVISION_SEGMENTERS:
    MODELS.add(_name, functools.partial(build_torchvision_segmenter, _name), source="torchvision.models.segmentation")
