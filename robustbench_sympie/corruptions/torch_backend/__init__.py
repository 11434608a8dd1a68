"""Batched torch implementations of the corruptions (the ``torch`` corruption backend).

Importing this package registers every module found in it (noise, blur, digital and any other
corruption module present, e.g. weather, colour warps, ImageNet-C-bar), so
:data:`TORCH_CORRUPTIONS` lists all corruptions with a torch implementation.
"""

from __future__ import annotations

import importlib
import importlib.util

from . import base, rng
from .base import TORCH_CORRUPTIONS, TorchCorruption, corrupt_batch, register_torch_corruption

#: the corruption modules of this package, imported (when present) in this order
_MODULES: tuple[str, ...] = ("noise", "blur", "digital", "weather", "colour_warps", "cbar")

for _module in _MODULES:
    if importlib.util.find_spec(f"{__name__}.{_module}") is not None:
        importlib.import_module(f"{__name__}.{_module}")


def get_torch_corruption(name: str) -> TorchCorruption:
    """The torch implementation of corruption ``name`` (a clear error when there is none)."""
    try:
        return TORCH_CORRUPTIONS[name]
    except KeyError:
        raise KeyError(f"corruption {name!r} has no torch implementation; use --corruption-backend "
                       f"reference (torch implementations: {', '.join(list_torch_corruptions())})") from None


def list_torch_corruptions() -> list[str]:
    """Names of the corruptions with a torch implementation, sorted."""
    return sorted(TORCH_CORRUPTIONS)


__all__ = ["TORCH_CORRUPTIONS", "TorchCorruption", "base", "corrupt_batch", "get_torch_corruption",
           "list_torch_corruptions", "register_torch_corruption", "rng"]
