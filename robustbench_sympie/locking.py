"""Small file-system helpers shared by the writers: an exclusive folder lock and umask-respecting temp files.

``folder_lock(DIR)`` serialises the processes that write into ``DIR`` (``fcntl.flock`` on ``DIR/.lock``;
the ``filelock`` package where ``fcntl`` does not exist). ``publish_temp_file(tmp)`` gives a temporary file
from :func:`tempfile.mkstemp` (created 0600) the mode a plain ``open()`` would have given it under the
user's umask, so that ``os.replace`` does not leave the result more private than the files next to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


def current_umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_temp_file(tmp: str | os.PathLike) -> None:
    """chmod a ``mkstemp`` file to ``0o666 & ~umask``, the mode ``open(path, 'w')`` would have created."""
    os.chmod(tmp, 0o666 & ~current_umask())


@contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the duration of the block."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # Windows
        from filelock import FileLock

        with FileLock(str(path)):
            yield path
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
