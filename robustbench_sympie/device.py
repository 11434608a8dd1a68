"""One device resolver for every command: ``auto`` picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from .errors import SuiteError


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device named by ``device``; an unknown or unavailable one is a :class:`SuiteError`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SuiteError(f"--device {device!r}: unknown device; expected cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SuiteError(f"--device {device}: CUDA is not available on this machine (use cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SuiteError(f"--device {device}: expected a CUDA device index below {torch.cuda.device_count()}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise SuiteError(f"--device {device}: MPS is not available on this machine (use cpu or auto)")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise SuiteError(f"--device {device!r}: unsupported device type; expected cpu, cuda, cuda:N, mps or auto")
    return dev
