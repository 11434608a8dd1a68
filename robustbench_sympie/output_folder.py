"""Output folders that tools own: a marker file records what a tool wrote, so it never overwrites other files.

``publish_leaderboard`` writes into a staging folder next to ``--out`` and then moves the files in with
:func:`install_staged`: into a folder that is missing, empty, or holds the tool's marker (and then only over the
files the marker lists), unless ``force``. The marker (``.publish_leaderboard``) lists the files it wrote, one
relative path a line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SuiteError


class OutputFolderError(SuiteError):
    """An output folder the tool may not write into (not its own, or not writable)."""


def _marker_lines(marker: Path) -> set[str]:
    return {line.strip() for line in marker.read_text(encoding="utf-8").splitlines() if line.strip()}


@contextmanager
def staged_output(out: str | os.PathLike, *, marker_name: str, tool: str, force: bool = False) -> Iterator[Path]:
    """A fresh folder to write into; on success its files are moved into ``out`` by :func:`install_staged`."""
    out = Path(out)
    check_owned(out, marker_name=marker_name, tool=tool, force=force)  # fail before any work when clearly foreign
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    try:
        yield staging
        install_staged(staging, out, marker_name=marker_name, tool=tool, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_owned(out: Path, *, marker_name: str, tool: str, force: bool = False) -> None:
    """Refuse a non-empty ``out`` that has no ``marker_name`` (the tool did not create it), unless ``force``."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise OutputFolderError(f"--out {out}: expected a folder, but it is a file")
    if (out / marker_name).is_file() or not any(out.iterdir()):
        return
    raise OutputFolderError(
        f"--out {out}: expected an empty folder or one written by {tool} (marker {marker_name}); it holds other "
        "files, which are left alone: choose another --out, or pass --force to write into it"
    )


def install_staged(staging: Path, out: Path, *, marker_name: str, tool: str, force: bool = False) -> list[Path]:
    """Move every file of ``staging`` into ``out``, never over a file the marker does not list (unless ``force``)."""
    check_owned(out, marker_name=marker_name, tool=tool, force=force)
    marker = out / marker_name
    owned = _marker_lines(marker) if marker.is_file() else set()
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    foreign = [f for f in files if (out / f).exists() and f not in owned]
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputFolderError(
            f"--out {out}: expected to overwrite only files {tool} wrote there (listed in {marker_name}); "
            f"it would replace {shown}: choose another --out, or pass --force"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in files:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
        written.append(target)
    marker.write_text("".join(f"{line}\n" for line in sorted(owned | set(files))), encoding="utf-8")
    return written


def check_writable_folder(out: str | os.PathLike, flag: str = "--out") -> Path:
    """Create ``out`` if needed and check that files can be written in it (one clear error otherwise)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
        raise OutputFolderError(f"{flag} {out}: expected a writable folder, but: {reason}{where}") from None
    return out
