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
    "EvalDataset": "robustbench_sympie.datasets",
    "Cell": "robustbench_sympie.datasets",
    "register_dataset": "robustbench_sympie.datasets",
    "create_dataset": "robustbench_sympie.datasets",
    "list_datasets": "robustbench_sympie.datasets",
    "register_corruption": "robustbench_sympie.corruptions",
    "get_corruption": "robustbench_sympie.corruptions",
    "list_corruptions": "robustbench_sympie.corruptions",
    "SuiteError": "robustbench_sympie.errors",
    "DataError": "robustbench_sympie.errors",
    "WeightsNotFoundError": "robustbench_sympie.errors",
    "WeightsFormatError": "robustbench_sympie.errors",
    "MissingExtraError": "robustbench_sympie.errors",
    "UnknownNameError": "robustbench_sympie.registry",
    "RegistryError": "robustbench_sympie.registry",
    "load_results": "robustbench_sympie.aggregate",
    "mce": "robustbench_sympie.aggregate",
    "deltas_vs_baseline": "robustbench_sympie.aggregate",
    "load_records": "robustbench_sympie.records",
    "paired_deltas": "robustbench_sympie.stats",
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
