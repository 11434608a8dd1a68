"""One way to get weights: every weights file the suite loads goes through this module.

* **One cache**: torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``, by default
  ``~/.cache/torch/hub/checkpoints``), shared with torchvision.
* **One download path**: ``torch.hub.download_url_to_file`` with the file's SHA-256 checked when it is known.
* **One offline switch**: ``ROBUSTBENCH_SYMPIE_OFFLINE=1`` never downloads.
* **One safe loader**: ``.safetensors`` or ``torch.load(weights_only=True)``; pickles of arbitrary objects are
  refused with a message on how to convert a trusted file (:mod:`.safe_load`).
* **Two errors**: :class:`~.errors.WeightsNotFoundError` (not on disk and not downloadable; the message names the
  file, the cache path to put it at and the URL) and :class:`~.errors.WeightsFormatError` (the file exists but
  cannot be read as a state dict; never reported as "not found").

Named weights are :class:`WeightsFile` values, usually members of an enum that carries their metadata (see
``SympieWeights``), as torchvision's weights enums do. ``weights=None`` means "the default weights" for every
model and enhancer of the suite.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from .errors import WeightsFormatError, WeightsNotFoundError

OFFLINE_ENV = "ROBUSTBENCH_SYMPIE_OFFLINE"


def is_offline() -> bool:
    """True when the user asked the suite never to download (``ROBUSTBENCH_SYMPIE_OFFLINE=1``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


def cache_dir() -> Path:
    """The one weights cache: ``torch.hub.get_dir()/checkpoints`` (follows ``$TORCH_HOME``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsFile:
    """A weights file the suite knows: its name, where it is packaged or cached, its URL and hash, metadata."""

    filename: str
    url: str | None = None
    sha256: str | None = None
    #: folder of a file shipped inside a package (then it is never downloaded)
    packaged_dir: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> WeightsFile:
        """The file at ``url``, cached under its URL's base name (as torch.hub does)."""
        return cls(os.path.basename(urlparse(url).path), url, **kwargs)

    @property
    def path(self) -> Path:
        """Where the file is (packaged) or is cached (downloadable)."""
        return (self.packaged_dir if self.packaged_dir is not None else cache_dir()) / self.filename

    def is_available(self) -> bool:
        """True when the file is on disk now (a downloadable one may still be fetched)."""
        return self.path.is_file()

    def fetch(self, *, what: str, how_else: str = "pass the file's path instead") -> Path:
        """The local file, downloaded (and hash-checked) first when needed and allowed."""
        path = self.path
        if path.is_file():
            return path
        if self.packaged_dir is not None or self.url is None:
            raise WeightsNotFoundError(f"Weights for {what} are not available: {path} is missing; {how_else}.")
        reason = f"{OFFLINE_ENV} is set" if is_offline() else None
        if reason is None:
            try:
                download(self.url, path, sha256=self.sha256)
                return path
            except WeightsFormatError:
                raise
            except Exception as exc:  # urllib raises a zoo of types; all mean "not downloadable now"
                reason = f"download failed: {type(exc).__name__}: {exc}"
        raise WeightsNotFoundError(
            f"Weights for {what} are not on disk and could not be downloaded ({reason}).\n"
            f"  file:       {self.filename}\n"
            f"  looked for: {path}\n"
            f"  source:     {self.url}\n"
            f"To provide them, download that file on a machine with internet access and place it at the path above "
            f"(the cache follows $TORCH_HOME), or {how_else}."
        ) from None


def download(url: str, path: Path, *, sha256: str | None = None) -> None:
    """Download ``url`` to ``path`` atomically (torch.hub), then check its SHA-256 when given."""
    import torch.hub

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=True)
    if sha256 is not None and (actual := sha256_of(path)) != sha256:
        path.unlink(missing_ok=True)
        raise WeightsFormatError(f"{url}: downloaded file has SHA-256 {actual}, expected {sha256}; removed it "
                                 f"from {path} (a corrupted or changed download)")


def load_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, Any]:
    """A state dict from ``.safetensors`` or a tensors-only ``.pth``/``.pt``.

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and strips ``module.`` prefixes. A missing file is a
    :class:`WeightsNotFoundError`, a present but unreadable one a :class:`WeightsFormatError`.
    """
    from .errors import DataError
    from .safe_load import safe_torch_load

    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file for {what} not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = safe_torch_load(path, what=what)
    except DataError:
        raise
    except Exception as exc:
        raise WeightsFormatError(
            f"{path}: cannot read weights for {what} ({type(exc).__name__}: {exc}); expected a state dict saved "
            "with torch.save (tensors only) or a .safetensors file"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsFormatError(f"{path} does not hold a state dict for {what} (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}
