"""Registry of enhancers (``register_enhancer``, ``create_enhancer``, ``list_enhancers``)."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Enhancer

ENHANCERS: Registry = Registry(
    "enhancer",
    entry_point_group="robustbench_sympie.enhancers",
    builtin_modules=("robustbench_sympie.enhancers.identity", "robustbench_sympie.enhancers.sympie"),
)


def register_enhancer(name: str | None = None, *, overwrite: bool = False):
    """Class or function decorator adding an enhancer to the registry under ``name``."""
    return ENHANCERS.register(name, overwrite=overwrite)


def create_enhancer(name: str, **kwargs: Any) -> Enhancer:
    """Build the enhancer registered as ``name`` (see :func:`list_enhancers`)."""
    return ENHANCERS.create(name, **kwargs)


def list_enhancers() -> list[str]:
    """Names of all registered enhancers, built-in and plugin."""
    return ENHANCERS.names()
