"""Named SyMPIE weights (in the spirit of torchvision's weights enums), fetching, loading and saving.

Two kinds of entries exist: *downloadable* ones (a URL; fetched and cached by :mod:`..weights_hub`, in torch.hub's
checkpoint folder like every other weights file of the suite) and *packaged* ones (a file shipped in
``robustbench_sympie/weights/``). Files hold the NEM state dict with the released key layout (``backbone.*``,
``out.*``), as ``.pth``/``.pt`` or ``.safetensors``. :class:`SympieWeights` is the enum of the named entries.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from ..atomic import atomic_path, write_atomic
from ..errors import DataError, WeightsNotFoundError
from ..provenance import git_commit
from ..weights_hub import OFFLINE_ENV, WeightsFile, load_state_dict
from .sympie_arch import SympieNEM

__all__ = [
    "EFFICIENTNET_LITE0_SAMPLE",
    "OFFLINE_ENV",
    "RESNET50_V2_RELEASED",
    "SYMPIE_WEIGHTS",
    "DataError",
    "SympieWeights",
    "SympieWeightsEntry",
    "WeightsNotFoundError",
    "default_weights_for",
    "find_entry",
    "load_nem_state_dict",
    "save_nem_weights",
]

#: directory of the weights shipped with the package (looked up at call time, so tests can redirect it)
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "weights"

ZENODO_RECORD = "10930713"


# ------------------------------------------------------------------------------------------------
# Entries
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SympieWeightsEntry:
    """One named set of NEM weights and where to get it."""

    name: str
    downstream_model: str
    url: str | None
    filename: str
    packaged: bool = False
    sha256: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))  # read-only, like the other fields

    @property
    def file(self) -> WeightsFile:
        """The weights file behind this entry (packaged in this package, or downloaded to the one cache)."""
        return WeightsFile(self.filename, self.url, self.sha256, PACKAGED_DIR if self.packaged else None,
                           dict(self.meta))

    def local_path(self) -> Path:
        """Where the file is (packaged entries) or is cached (downloadable entries)."""
        return self.file.path

    def is_available(self) -> bool:
        """True when the file is on disk now (downloadable entries may still be fetched by :meth:`resolve`)."""
        return self.file.is_available()

    def resolve(self) -> Path:
        """The local file, downloaded first if needed; :class:`WeightsNotFoundError` if that is impossible."""
        record = self.meta.get("zenodo_record")
        source = f" (Zenodo record {record}, https://zenodo.org/records/{record})" if record else ""
        return self.file.fetch(what=f"SyMPIE {self.name} (NEM trained for {self.downstream_model!r}){source}",
                               how_else="pass --enhancer-weights PATH (sympie:weights=PATH) to use a file elsewhere"
                               if not self.packaged else "train them (see the training recipe) or pass "
                               "--enhancer-weights PATH")


RESNET50_V2_RELEASED = SympieWeightsEntry(
    name="RESNET50_V2_RELEASED",
    downstream_model="resnet50",
    url=f"https://zenodo.org/records/{ZENODO_RECORD}/files/sympie.pth?download=1",
    filename="sympie.pth",
    meta={
        "description": "official SyMPIE checkpoint (Barbato et al., MMSys 2024)",
        "zenodo_record": ZENODO_RECORD,
        "downstream_weights": "torchvision ResNet50_Weights.IMAGENET1K_V2",
    },
)

EFFICIENTNET_LITE0_SAMPLE = SympieWeightsEntry(
    name="EFFICIENTNET_LITE0_SAMPLE",
    downstream_model="efficientnet_lite0",
    url=None,
    filename="sympie_efficientnet_lite0.safetensors",
    packaged=True,
    meta={"description": "NEM trained by this project for EfficientNet-Lite0 (see the sidecar .json)"},
)

class SympieWeights(Enum):
    """The named SyMPIE weights, as torchvision's weights enums: each member's value carries its metadata."""

    RESNET50_V2_RELEASED = RESNET50_V2_RELEASED
    EFFICIENTNET_LITE0_SAMPLE = EFFICIENTNET_LITE0_SAMPLE


#: all named entries, by name
SYMPIE_WEIGHTS: dict[str, SympieWeightsEntry] = {member.name: member.value for member in SympieWeights}


def find_entry(name: str) -> SympieWeightsEntry | None:
    """The entry called ``name`` (case-insensitive), or ``None``."""
    return SYMPIE_WEIGHTS.get(name.upper())


def default_weights_for(downstream_model: str | None) -> SympieWeightsEntry | None:
    """The entry trained for ``downstream_model`` (case-insensitive), or ``None`` if there is none."""
    if downstream_model is None:
        return None
    wanted = downstream_model.lower()
    return next((e for e in SYMPIE_WEIGHTS.values() if e.downstream_model == wanted), None)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def _unwrap_state_dict(state: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the NEM state dict in ``state`` (plain, or under state_dict/model/colm) and strip prefixes."""
    for key in ("state_dict", "model", "colm"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise DataError(f"{path} does not hold a state dict (got {type(state).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("colm.") for k in state):  # a whole released CorrectCol: keep its NEM only
        state = {k.removeprefix("colm."): v for k, v in state.items() if k.startswith("colm.")}
    return {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}


def _expected_shapes() -> dict[str, torch.Size]:
    with torch.device("meta"):
        return {k: v.shape for k, v in SympieNEM().state_dict().items()}


def _check_keys(state: dict[str, torch.Tensor], path: Path) -> None:
    expected = _expected_shapes()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: {tuple(state[k].shape)} != {tuple(shape)}"
        for k, shape in expected.items()
        if k in state and state[k].shape != shape
    ]
    if missing or unexpected or wrong:
        lines = [f"{path} is not a SyMPIE NEM state dict:"]
        lines += [f"  missing keys: {', '.join(missing)}"] if missing else []
        lines += [f"  unexpected keys: {', '.join(unexpected)}"] if unexpected else []
        lines += [f"  shape mismatches: {'; '.join(wrong)}"] if wrong else []
        raise DataError("\n".join(lines))


def load_nem_state_dict(path: str | os.PathLike, nem: SympieNEM | None = None) -> dict[str, torch.Tensor]:
    """Read, validate and return the NEM state dict in ``path``; load it strictly into ``nem`` when given.

    Accepts ``.pth``/``.pt`` (read with ``weights_only=True``) and ``.safetensors``; a plain NEM state dict or
    one wrapped under ``"state_dict"``/``"model"``/``"colm"``; ``module.``/``colm.`` prefixes are stripped and
    half-precision tensors cast to float32. A missing ``num_batches_tracked`` counter (no effect in eval) is
    tolerated. Raises :class:`WeightsNotFoundError` for an absent file and :class:`DataError` for an unreadable
    one or one whose keys or shapes differ (the message names the file and lists the keys).
    """
    if not str(path).strip():
        raise WeightsNotFoundError("SyMPIE weights: an empty path was given (e.g. 'sympie:weights='); give a file")
    path = Path(path)
    if path.is_dir():
        raise WeightsNotFoundError(f"SyMPIE weights {path} is a folder: give the weights file inside it "
                                   "(.safetensors, .pth or .pt)")
    if not path.is_file():
        raise WeightsNotFoundError(f"SyMPIE weights file not found: {path}")
    state = _unwrap_state_dict(load_state_dict(path, what="SyMPIE (a NEM state dict)"), path)
    _check_keys(state, path)
    if nem is not None:
        nem.load_state_dict(state, strict=False)  # keys were checked above; only counters may be absent
    return state


# ------------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------------
def save_nem_weights(
    nem: SympieNEM, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None, *, half: bool = False
) -> Path:
    """Write the NEM state dict (released key layout) to ``.pth``/``.pt``/``.safetensors``, plus ``<path>.json``.

    The sidecar json records the downstream model, training data, iterations and git commit (taken from
    ``metadata`` when given, the commit otherwise from ``git``), every other ``metadata`` item, and the
    weights file's sha256. ``half=True`` stores floating tensors as float16. Both files are written atomically.
    """
    path = Path(path)
    if path.suffix not in (".pth", ".pt", ".safetensors"):
        raise ValueError(f"SyMPIE weights are saved as .pth, .pt or .safetensors, got {path}")
    state = {k: v.detach().cpu().contiguous() for k, v in nem.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    info: dict[str, Any] = {"downstream_model": None, "training_data": None, "iterations": None}
    info.update(metadata or {})
    info.setdefault("git_commit", None)
    info["git_commit"] = info["git_commit"] or git_commit() or None
    info.update(format="sympie-nem", dtype="float16" if half else "float32")
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata={"sympie": json.dumps(info, default=str)})
        else:
            torch.save(state, tmp)
    info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    write_atomic(path.with_name(path.name + ".json"), json.dumps(info, indent=2, default=str) + "\n")
    return path
