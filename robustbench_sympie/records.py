"""Per-image records: which classes each (enhancer, model) predicted for every image of every cell.

Written beside ``results.csv`` as ``OUT/records/<cell>-<pairs hash>.parquet`` (one file per evaluated cell and set
of pairs, atomically, when the cell finishes), so paired statistics can compare enhancers on the same images.
Columns: ``enhancer, model, dataset, corruption, severity, config_hash, image_id, target`` (the first accepted
class), ``top1..top5`` (predicted class indices, best first, int16), ``correct_top1, correct_top5`` (bool).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .errors import DataError

RECORDS_DIR = "records"
#: where segmentation runs write their per-image records (one confusion matrix per image, see :mod:`.tasks`)
SEGMENTATION_RECORDS_DIR = "segmentation_records"
KEY = ("enhancer", "model", "dataset", "corruption", "severity", "config_hash", "image_id")
RECORD_COLUMNS = (*KEY, "target", "top1", "top2", "top3", "top4", "top5", "correct_top1", "correct_top5")


def records_frame(pair_key: dict[str, object], image_ids: Sequence[str], targets: np.ndarray,
                  top5: np.ndarray, correct_top1: np.ndarray, correct_top5: np.ndarray) -> pd.DataFrame:
    """The records of one pair on one cell: ``top5`` is ``N x k`` predicted classes (k <= 5, padded with -1)."""
    n = len(image_ids)
    preds = np.full((n, 5), -1, dtype=np.int16)
    preds[:, : top5.shape[1]] = top5
    frame = pd.DataFrame({"image_id": list(image_ids), "target": np.asarray(targets, dtype=np.int16)})
    for k in range(5):
        frame[f"top{k + 1}"] = preds[:, k]
    frame["correct_top1"] = np.asarray(correct_top1, dtype=bool)
    frame["correct_top5"] = np.asarray(correct_top5, dtype=bool)
    for column, value in reversed(list(pair_key.items())):
        frame.insert(0, column, value)
    return frame[list(RECORD_COLUMNS)]


def write_cell_records(out: str | os.PathLike, frames: Iterable[pd.DataFrame]) -> Path | None:
    """Write one cell's records (all its pairs) atomically; returns the file (None when there is nothing)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    first = table.iloc[0]
    pairs = sorted({f"{e}|{m}|{h}" for e, m, h in zip(table["enhancer"], table["model"], table["config_hash"],
                                                       strict=True)})
    digest = hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:12]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{first['dataset']}-{first['corruption']}")
    folder = SEGMENTATION_RECORDS_DIR if "confusion" in table.columns else RECORDS_DIR
    path = Path(out) / folder / f"{safe}-{int(first['severity'])}-{digest}.parquet"
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def load_records(*sources: str | os.PathLike) -> pd.DataFrame:
    """All per-image records under run folders (``OUT`` or ``OUT/records``) or of single parquet files.

    The same (pair, cell, image) written twice (a cell re-run after a crash) is kept once, the newest file winning.
    """
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        folder = source / RECORDS_DIR if (source / RECORDS_DIR).is_dir() else source
        if folder.is_dir():
            files.extend(sorted(folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime))
        elif source.suffix == ".parquet" and source.is_file():
            files.append(source)
        else:
            raise DataError(f"{source}: no per-image records found (expected OUT/{RECORDS_DIR}/*.parquet; runs with "
                            "--no-records write none)")
    if not files:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    missing = [c for c in RECORD_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"per-image records under {sources[0]} lack the columns {missing}")
    return table.drop_duplicates(subset=list(KEY), keep="last").reset_index(drop=True)
