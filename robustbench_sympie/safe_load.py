"""``torch.load(weights_only=True)`` with one clear error for files that pickle more than tensors.

Torch's own message advises re-running with ``weights_only=False``, which executes code from the file. The
suite never does that: it says the file is not a plain state dict and how to convert a *trusted* one.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

from .errors import DataError

_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def not_a_plain_state_dict(path: str | os.PathLike, what: str, exc: BaseException) -> DataError:
    """The error for a file the safe loader refused (names the offending Python object when torch says it)."""
    found = _UNSUPPORTED.search(str(exc))
    holds = f" (it pickles the Python object {found.group(1)})" if found else " (it pickles Python objects)"
    return DataError(
        f"{path}: expected a plain state dict (tensors only) for {what}, but it is not one{holds}; it is not "
        "loaded, since unpickling can run code. To convert a file you trust, in a trusted session: "
        "obj = torch.load(PATH, weights_only=False); torch.save(obj.state_dict() if hasattr(obj, 'state_dict') "
        "else obj, 'plain.pth') (or safetensors.torch.save_file(obj.state_dict(), 'plain.safetensors'))"
    )


def safe_torch_load(path: str | os.PathLike, *, what: str = "the weights") -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)``; a refused pickle is a :class:`DataError`."""
    import torch

    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise not_a_plain_state_dict(path, what, exc) from None
