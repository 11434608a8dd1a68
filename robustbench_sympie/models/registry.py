"""Registry of downstream models (``register_model``, ``create_model``, ``list_models``)."""

from __future__ import annotations

from typing import Any

from ..errors import MissingExtraError
from ..registry import Registry
from .base import Classifier
from .extras import missing_extra_message
from .segmenter import Segmenter

MODELS: Registry = Registry(
    "model",
    entry_point_group="robustbench_sympie.models",
    builtin_modules=(
        "robustbench_sympie.models.efficientnet_lite",
        "robustbench_sympie.models.torchvision_models",
        "robustbench_sympie.models.segmentation",
    ),
)


def register_model(name: str | None = None, *, overwrite: bool = False):
    """Decorator adding a model factory ``fn(weights=None, **kwargs) -> Classifier`` under ``name``."""
    return MODELS.register(name, overwrite=overwrite)


def create_model(name: str, **kwargs: Any) -> Classifier | Segmenter:
    """Build the frozen model registered as ``name``; ``name:key=value:...`` passes constructor arguments
    (``deeplabv3_resnet50:weights=ckpt.pth:window=1024``), which win over ``kwargs``."""
    if ":" in name:
        from .spec import model_spec_kwargs

        name, spec_kwargs = model_spec_kwargs(name, MODELS)
        kwargs = {**kwargs, **spec_kwargs}
    if name not in MODELS and (message := missing_extra_message(name)) is not None:
        raise MissingExtraError(message)
    return MODELS.create(name, **kwargs)


def list_models() -> list[str]:
    """Names of all registered downstream models."""
    return MODELS.names()
