"""Run metadata recorded with every result row: versions, device, git commit, configuration hash."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any


def package_version(name: str = "robustbench-sympie") -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def git_commit(path: str | None = None) -> str:
    """The commit of the git checkout holding this package (empty when not in a checkout)."""
    where = path or str(Path(__file__).resolve().parent)
    try:
        out = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def config_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that determine a cell's numbers."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_metadata(device: str) -> dict[str, Any]:
    """Versions, device and commit of this run."""
    import torch

    return {
        "package_version": package_version(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
