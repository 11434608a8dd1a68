"""Evaluation datasets: the :class:`EvalDataset` contract, its registry and the built-in datasets.

Built-in datasets (ImageNet-C on the fly, pre-rendered or from the hub; ImageNet-C-Bar; ImageNet-C-Mixed; the
colour warps; VizWiz) register themselves when the registry is first queried.
"""

from __future__ import annotations

from .base import (
    CLEAN,
    Batch,
    Cell,
    EvalDataset,
    GridDatasetMixin,
    ImageCellDataset,
    Sample,
    collate_samples,
    demo_data_root,
    expand_corruptions,
    grid_cells,
)
from .registry import DATASETS, create_dataset, list_datasets, register_dataset

__all__ = ["CLEAN", "Batch", "Cell", "DATASETS", "EvalDataset", "GridDatasetMixin", "ImageCellDataset", "Sample",
           "collate_samples", "create_dataset", "demo_data_root", "expand_corruptions", "grid_cells",
           "list_datasets", "register_dataset"]
