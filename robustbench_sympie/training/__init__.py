"""Training SyMPIE for a frozen downstream classifier (Algorithm 1 of Barbato et al., MMSys 2024).

Heavy modules (torch, the models) load only when :func:`train` or the classes are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loop import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
