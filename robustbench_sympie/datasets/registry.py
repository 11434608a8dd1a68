"""Registry of evaluation datasets (``register_dataset``, ``create_dataset``, ``list_datasets``)."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import EvalDataset

DATASETS: Registry = Registry("dataset", entry_point_group="robustbench_sympie.datasets",
                              builtin_modules=("robustbench_sympie.datasets.imagenet_c",
                                               "robustbench_sympie.datasets.mixed",
                                               "robustbench_sympie.datasets.colour_warps",
                                               "robustbench_sympie.datasets.imagenet_c_bar",
                                               "robustbench_sympie.datasets.vizwiz",
                                               "robustbench_sympie.datasets.segmentation"))


def register_dataset(name: str | None = None, *, overwrite: bool = False):
    """Decorator adding a dataset factory ``fn(data_root=..., corruptions=..., ...) -> EvalDataset``."""
    return DATASETS.register(name, overwrite=overwrite)


def create_dataset(name: str, **kwargs: Any) -> EvalDataset:
    """Build the evaluation dataset registered as ``name``."""
    dataset = DATASETS.create(name, **kwargs)
    if not isinstance(dataset, EvalDataset):
        missing = [m for m in ("name", "n_images", *(n for n in vars(EvalDataset) if not n.startswith("_")))
                   if not hasattr(dataset, m)]
        raise TypeError(f"dataset factory {name!r} returned {type(dataset).__name__}, which does not implement "
                        f"EvalDataset: it lacks {', '.join(dict.fromkeys(missing))} (subclass GridDatasetMixin for "
                        "the optional parts)")
    return dataset


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return DATASETS.names()
