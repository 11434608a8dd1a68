"""The long-format results table: one row per (enhancer, model, dataset, corruption, severity).

Rows are written atomically after every cell (temporary file + ``os.replace``), so a killed run
loses at most the cell in flight, and a rerun of the same command skips the finished cells.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import atomic_path
from .errors import DataError
from .locking import folder_lock

#: the leading columns, in this order; provenance columns follow
RESULT_COLUMNS: tuple[str, ...] = (
    "enhancer", "model", "dataset", "corruption", "severity", "n", "n_correct_top1", "n_correct_top5",
    "top1", "top5", "n_skipped", "seconds", "images_per_second",
)
#: the columns that identify a cell of the grid
KEY_COLUMNS: tuple[str, ...] = ("enhancer", "model", "dataset", "corruption", "severity")
#: provenance columns that must match for a finished cell to be reused by a resumed run
RESUME_COLUMNS: tuple[str, ...] = ("config_hash",)

RESULTS_FILE = "results.csv"


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results CSV, checking that the leading columns are there."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"config_hash": str, "git_commit": str, "image_set": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable results CSV: {exc}") from None
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks the results columns {missing}; expected {list(RESULT_COLUMNS)}")
    check_counts(frame, path)
    return frame


#: whole-number columns: required in every row, or (correct counts) optional but then between 0 and ``n``
_REQUIRED_COUNTS: tuple[str, ...] = ("severity", "n")
_CORRECT_COUNTS: tuple[str, ...] = ("n_correct_top1", "n_correct_top5")


def check_counts(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Severities and image counts are whole numbers >= 0 and correct counts lie in ``0..n``; otherwise a
    :class:`DataError` names the file, the row (line of the CSV), its cell and the column."""
    n = pd.to_numeric(frame["n"], errors="coerce")
    for column in (*_REQUIRED_COUNTS, *_CORRECT_COUNTS):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = (values.isna() & raw.notna()) | (values < 0) | (values.notna() & (values != values.round()))
        expected = "a whole number >= 0"
        if column in _REQUIRED_COUNTS:
            bad |= raw.isna()
        else:
            bad |= values > n
            expected = "a whole number between 0 and the row's n"
        if bad.any():
            row = bad.to_numpy().argmax()
            cell = "/".join(str(frame[c].iloc[row]) for c in KEY_COLUMNS)
            value = raw.iloc[row]
            shown = repr(value) if isinstance(value, str) else str(value)
            raise DataError(f"{path}, line {row + 2} (cell {cell}), column {column}: expected {expected}, "
                            f"got {shown}")


def write_results_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` to ``path`` so that readers see either the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = list(RESULT_COLUMNS) + [c for c in frame.columns if c not in RESULT_COLUMNS]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        frame[ordered].to_csv(handle, index=False)
        handle.flush()
        os.fsync(handle.fileno())


class ResultsStore:
    """The results file of one output directory: finished cells and atomic appends."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        self.frame = read_results(self.path) if self.path.exists() else pd.DataFrame(columns=list(RESULT_COLUMNS))

    def finished(self, key: Mapping[str, Any], config_hash: str) -> bool:
        """Whether the cell ``key`` was already evaluated under the same configuration."""
        if self.frame.empty:
            return False
        mask = pd.Series(True, index=self.frame.index)
        for column, value in key.items():
            mask &= self.frame[column].astype(str) == str(value)
        if not mask.any():
            return False
        hashes = set(self.frame.loc[mask, "config_hash"].astype(str)) if "config_hash" in self.frame else set()
        if config_hash not in hashes:
            raise DataError(
                f"{self.path} already holds cell {dict(key)} computed with other settings "
                f"(config {sorted(hashes)} vs {config_hash}: seed, images, preprocessing, weights, corruption backend, "
                "decoding or precision differ; the rows' provenance columns say which). "
                "Use another --out directory, or delete that results.csv to recompute."
            )
        return True

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows and rewrite the file atomically.

        Under an exclusive lock on the output folder the file is re-read from disk and the new rows are
        added to what is there, so concurrent runs writing the same folder never drop each other's rows.
        """
        new = pd.DataFrame(list(rows))
        with folder_lock(self.path.parent):
            on_disk = read_results(self.path) if self.path.exists() else pd.DataFrame(columns=list(RESULT_COLUMNS))
            new = self._not_on_disk(new, on_disk)
            merged = new if on_disk.empty else on_disk if new.empty else pd.concat([on_disk, new], ignore_index=True)
            write_results_atomic(merged, self.path)
        self.frame = merged

    def _not_on_disk(self, new: pd.DataFrame, on_disk: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``new`` whose cells another process has not written meanwhile (same settings: kept once)."""
        if on_disk.empty or new.empty:
            return new
        columns = [c for c in KEY_COLUMNS if c in on_disk.columns]
        disk_keys = on_disk[columns].astype(str).apply(tuple, axis=1)
        disk_hash = dict(zip(disk_keys, on_disk.get("config_hash", pd.Series("", index=on_disk.index)).astype(str),
                             strict=True))
        keep = []
        for index, row in new.iterrows():
            key = tuple(str(row[c]) for c in columns)
            if key not in disk_hash:
                keep.append(index)
            elif disk_hash[key] != str(row.get("config_hash", "")):
                raise DataError(
                    f"{self.path}: another run wrote cell {dict(zip(columns, key, strict=True))} with other settings "
                    f"(config {disk_hash[key]} vs {row.get('config_hash')}) while this run computed it; "
                    "use separate --out directories for runs with different settings"
                )
        return new.loc[keep]
