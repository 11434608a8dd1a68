"""The identity of the images a run evaluated, so that results on different image sets are never merged.

:func:`image_set_id` is a short hash of the images' ids (their paths relative to the data root, so the same
images at different paths on different machines have the same id), recorded in the ``image_set`` column of
results.csv. :func:`label_image_sets` keeps cells of different image sets apart when results are combined: when
one dataset name carries several image sets, each one's rows get the dataset label ``"<dataset> [images <id>]"``,
so tables show them side by side. Results with a single image set per dataset (and older files without the
column) keep their labels, and so their numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

COLUMN = "image_set"
#: provenance entries that describe where the images are, not which images they are
_LOCATION_KEYS = frozenset({"data_root", "missing_cells"})


def _short_hash(blob: str) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def image_ids_id(image_ids: Iterable[str]) -> str:
    """A 10-hex-digit id of a set of image ids (order does not matter)."""
    return _short_hash(json.dumps(sorted(image_ids)))


def image_set_id(dataset: Any) -> str:
    """A 10-hex-digit id of the images ``dataset`` evaluates (ids of its records, else its data provenance)."""
    records = getattr(dataset, "records", None)
    ids = [getattr(r, "image_id", None) for r in records] if isinstance(records, list | tuple) else []
    if ids and all(isinstance(i, str) for i in ids):
        return image_ids_id(ids)
    provenance = dataset.provenance() if callable(getattr(dataset, "provenance", None)) else {}
    return _short_hash(json.dumps({k: v for k, v in provenance.items() if k not in _LOCATION_KEYS}, sort_keys=True,
                                  default=str))


def label_image_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """Relabel the datasets that hold several image sets ``"<dataset> [images <id>]"`` (see the module doc)."""
    if COLUMN not in frame.columns or frame.empty:
        return frame
    known = frame[COLUMN].notna() & (frame[COLUMN].astype(str) != "")
    sets = frame[known].groupby("dataset", sort=False)[COLUMN].nunique()
    several = known & frame["dataset"].isin(sets[sets > 1].index)
    if not several.any():
        return frame
    frame = frame.copy()
    frame.loc[several, "dataset"] = (frame.loc[several, "dataset"].astype(str) + " [images "
                                     + frame.loc[several, COLUMN].astype(str) + "]")
    return frame
