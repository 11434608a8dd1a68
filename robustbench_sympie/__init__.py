"""robustbench-sympie: does cleaning the input make a vision model more robust, and what does it cost?

The public API is importable from the top level (heavy modules load on first use)::

    from robustbench_sympie import create_enhancer, create_model, list_enhancers, run_suite
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Registry": "robustbench_sympie.registry",
    "Enhancer": "robustbench_sympie.enhancers",
    "register_enhancer": "robustbench_sympie.enhancers",
    "create_enhancer": "robustbench_sympie.enhancers",
    "list_enhancers": "robustbench_sympie.enhancers",
    "Classifier": "robustbench_sympie.models",
    "register_model": "robustbench_sympie.models",
    "create_model": "robustbench_sympie.models",
    "list_models": "robustbench_sympie.models",
    "register_dataset": "robustbench_sympie.data.datasets",
    "create_dataset": "robustbench_sympie.data.datasets",
    "list_datasets": "robustbench_sympie.data.datasets",
    "register_corruption": "robustbench_sympie.data.corruptions",
    "get_corruption": "robustbench_sympie.data.corruptions",
    "list_corruptions": "robustbench_sympie.data.corruptions",
    "SuiteConfig": "robustbench_sympie.runner",
    "run_suite": "robustbench_sympie.runner",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robustbench_sympie' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
