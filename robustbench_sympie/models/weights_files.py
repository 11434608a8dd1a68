"""Fetching and loading weight files with one clear error when they are missing offline."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DataError, WeightsNotFoundError
from ..safe_load import safe_torch_load

OFFLINE_ENV = "ROBUSTBENCH_SYMPIE_OFFLINE"


def is_offline() -> bool:
    """True when the user asked the suite never to download (``ROBUSTBENCH_SYMPIE_OFFLINE=1``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


def torch_hub_checkpoint_path(url: str) -> Path:
    """Where ``torch.hub`` caches the file at ``url`` (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def fetch_torch_hub_checkpoint(url: str, *, what: str, how_else: str) -> Path:
    """Return the cached file for ``url``, downloading it first when online.

    Raises :class:`WeightsNotFoundError` naming the cache path and the alternatives when the file
    is absent and cannot be downloaded (no internet, or ``ROBUSTBENCH_SYMPIE_OFFLINE=1``).
    """
    import torch.hub

    path = torch_hub_checkpoint_path(url)
    if path.is_file():
        return path
    reason = f"{OFFLINE_ENV} is set" if is_offline() else None
    if reason is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=True)
            return path
        except Exception as exc:  # urllib raises a zoo of types; all mean "not downloadable now"
            reason = f"download failed: {type(exc).__name__}: {exc}"
    raise WeightsNotFoundError(
        f"Weights for {what} are not on disk and could not be downloaded ({reason}).\n"
        f"  looked for: {path}\n"
        f"  source:     {url}\n"
        f"To provide them, download that file on a machine with internet and place it at the path above "
        f"(the cache directory follows $TORCH_HOME), or {how_else}."
    ) from None


def load_state_dict_file(path: str | os.PathLike, *, what: str) -> dict:
    """Load a state dict from ``.pth``/``.pt`` (never unpickling arbitrary objects) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file for {what} not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = safe_torch_load(path, what=what)
        except DataError:
            raise
        except Exception as exc:
            raise WeightsNotFoundError(
                f"Could not read weights for {what} from {path}: {type(exc).__name__}: {exc}. "
                "Expected a state dict saved with torch.save (tensors only) or a .safetensors file."
            ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsNotFoundError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}
