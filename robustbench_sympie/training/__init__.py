"""Training SyMPIE for a frozen downstream classifier (Algorithm 1 of Barbato et al., MMSys 2024).

The modules: :mod:`.config` (the settings, torch-free), :mod:`.data` (training stream and held-out set),
:mod:`.step` (one optimisation step and its pieces), :mod:`.evaluate` (held-out top-1), :mod:`.checkpoint`
(checkpoint, log and weights files), :mod:`.trainer` (a whole run: :func:`train`) and :mod:`.warp_basis`.
Heavy modules (torch, the models) load only when :func:`train` or the classes are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig
    from .trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]

_HOMES: dict[str, str] = {"TrainConfig": ".config", "TrainResult": ".trainer", "train": ".trainer"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
