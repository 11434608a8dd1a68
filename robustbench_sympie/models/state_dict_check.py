"""Load a state dict strictly into a network, with one clear error listing missing / unexpected keys."""

from __future__ import annotations

import os
from collections.abc import Mapping

from torch import nn

from ..errors import DataError


def _first(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_state_dict_checked(net: nn.Module, state: Mapping, *, path: str | os.PathLike, what: str) -> None:
    """``net.load_state_dict(state, strict=True)``, raising :class:`DataError` naming the keys that do not fit."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing keys ({_first(missing)})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys ({_first(unexpected)})"] if unexpected else []
        parts += [f"{len(wrong)} shape mismatches ({_first(wrong, 3)})"] if wrong else []
        raise DataError(f"--weights {path}: expected a state dict of {what}, but it has " + "; ".join(parts))
    net.load_state_dict(state, strict=False)  # every expected key is present (num_batches_tracked may be absent)
