"""FLOPs and parameter counts of every registered enhancer and model, measured with PyTorch's own counter.

Convention: ``torch.utils.flop_counter.FlopCounterMode`` counts **2 FLOPs per multiply-add** for convolutions,
linear layers, matrix products (``mm``/``bmm``/``einsum``) and attention; MACs = FLOPs / 2. Element-wise ops,
normalisation, pooling, interpolation and activations are not counted (they are a few % of a CNN's cost).
Batch size 1.

Modules are built on the ``meta`` device and run on ``meta`` tensors: shapes propagate, nothing is computed and
no weights are needed, so even the 600M-parameter models cost a fraction of a second at 1920 x 1080.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: resolution label (width x height) -> (height, width)
RESOLUTIONS: dict[str, tuple[int, int]] = {"224x224": (224, 224), "1920x1080": (1080, 1920)}
FLOPS_COLUMNS: tuple[str, ...] = ("name", "kind", "resolution", "gflops", "gmacs", "params", "note")


@dataclass(frozen=True)
class FlopCount:
    """One row of the FLOPs table (``params`` is the raw parameter count; ``note`` says why a count is missing)."""

    name: str
    kind: str
    resolution: str
    gflops: float
    gmacs: float
    params: int
    note: str = ""


@contextlib.contextmanager
def meta_init() -> Iterator[None]:
    """Move every parameter and buffer to the ``meta`` device as modules register it (no memory, no init cost).

    Unlike ``with torch.device("meta")`` this lets constructors do real tensor arithmetic on plain tensors
    (torchvision's RegNets compute their widths that way).
    """
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register_parameter(self, name, param)
        if param is not None and param.device.type != "meta":
            self._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    def buffer_on_meta(self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        register_buffer(self, name, tensor, persistent)
        if tensor is not None and tensor.device.type != "meta":
            self._buffers[name] = tensor.to("meta")

    nn.Module.register_parameter, nn.Module.register_buffer = parameter_on_meta, buffer_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def count_flops(module: nn.Module, height: int, width: int) -> tuple[int, dict[str, int]]:
    """Total FLOPs of one forward pass on a 1 x 3 x H x W meta batch, and the FLOPs per submodule path."""
    images = torch.empty(1, 3, height, width, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(images)
    per_module = {path: sum(ops.values()) for path, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def count_params(module: nn.Module) -> int:
    """Number of parameters (all of them, trainable or frozen)."""
    return sum(p.numel() for p in module.parameters())


def build_model_architecture(name: str) -> nn.Module:
    """The registered model ``name`` on the meta device, without weights (FLOPs do not depend on them)."""
    from .models.efficientnet_lite import VARIANTS
    from .models.registry import MODELS

    with meta_init(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torchvision's notes on GoogLeNet/Inception init defaults
        if name in VARIANTS:
            from efficientnet_lite_pytorch import EfficientNet

            return EfficientNet.from_name(name.replace("_", "-"), image_size=None).eval()
        if MODELS.source(name) == "torchvision.models":
            import torchvision

            return torchvision.models.get_model(name, weights=None).eval()
        if MODELS.source(name) == "torchvision.models.segmentation":  # Cityscapes: 19 classes
            from .models.segmentation import Segmenter, torchvision_segmentation_net

            return Segmenter(torchvision_segmentation_net(name, 19), name=name).eval()
    return MODELS.create(name).to("meta").eval()  # a plugin: build it as registered


def build_enhancer_architecture(name: str) -> nn.Module:
    """The registered enhancer ``name`` on the meta device, untrained when it takes weights."""
    from .enhancers import create_enhancer

    try:
        enhancer = create_enhancer(name, weights=None)
    except TypeError:  # an enhancer without a weights argument
        enhancer = create_enhancer(name)
    return enhancer.to("meta").eval()


def _uncountable_note(module_or_class: Any) -> str | None:
    """The cost note of a module (or its class) whose work FlopCounterMode cannot see, else None."""
    if getattr(module_or_class, "flops_countable", True):
        return None
    return getattr(module_or_class, "cost_note", "") or "not countable: not a torch computation"


def _measure(name: str, kind: str, module: nn.Module, resolutions: Sequence[str]) -> list[FlopCount]:
    params = count_params(module)
    if (note := _uncountable_note(module)) is not None:  # e.g. a per-image OpenCV/scikit-image enhancer
        return [FlopCount(name, kind, r, float("nan"), float("nan"), params, note) for r in resolutions]
    rows = []
    for resolution in resolutions:
        try:
            flops, _ = count_flops(module, *RESOLUTIONS[resolution])
            rows.append(FlopCount(name, kind, resolution, flops / 1e9, flops / 2e9, params))
        except Exception as exc:  # e.g. ViTs only take their training resolution
            note = f"not countable at this size: {str(exc).splitlines()[0][:100] or type(exc).__name__}"
            rows.append(FlopCount(name, kind, resolution, float("nan"), float("nan"), params, note))
    return rows


def default_flops_models() -> list[str]:
    """Every registered model and the models of optional extras whose weights package is not installed (their
    architecture is known; counting needs no weights)."""
    from .models import list_models
    from .models.extras import EXTRA_MODELS

    return sorted({*list_models(), *EXTRA_MODELS})


def flops_table(enhancers: Iterable[str] | None = None, models: Iterable[str] | None = None,
                resolutions: Sequence[str] = tuple(RESOLUTIONS)) -> pd.DataFrame:
    """FLOPs, MACs and parameters of enhancers and models at each resolution (default: every registered enhancer
    and :func:`default_flops_models`).

    A module that cannot be built gets NaN counts and a ``note`` (a per-image library enhancer whose optional
    package is missing gets its usual cost note: its FLOPs are not countable either way).
    """
    from .enhancers import ENHANCERS, list_enhancers

    jobs = [(n, "enhancer", build_enhancer_architecture) for n in (list_enhancers() if enhancers is None
                                                                   else enhancers)]
    jobs += [(n, "model", build_model_architecture) for n in (default_flops_models() if models is None else models)]
    rows: list[FlopCount] = []
    for name, kind, build in jobs:
        try:
            module = build(name)
        except Exception as exc:
            note = (_uncountable_note(ENHANCERS.get(name)) if kind == "enhancer" and name in ENHANCERS else None) \
                or f"not built: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
            rows += [FlopCount(name, kind, r, float("nan"), float("nan"), 0, note) for r in resolutions]
            continue
        rows += _measure(name, kind, module, resolutions)
    return pd.DataFrame([asdict(r) for r in rows], columns=list(FLOPS_COLUMNS))


def overhead_table(flops: pd.DataFrame) -> pd.DataFrame:
    """Each enhancer's FLOPs as a percentage of each model's, at each resolution.

    Columns: ``enhancer, model, resolution, enhancer_gflops, model_gflops, overhead_pct``.
    """
    enhancers = flops[flops["kind"] == "enhancer"][["name", "resolution", "gflops"]]
    models = flops[flops["kind"] == "model"][["name", "resolution", "gflops"]]
    table = enhancers.merge(models, on="resolution", suffixes=("_enhancer", "_model"))
    table = table.rename(columns={"name_enhancer": "enhancer", "name_model": "model",
                                  "gflops_enhancer": "enhancer_gflops", "gflops_model": "model_gflops"})
    table["overhead_pct"] = 100 * table["enhancer_gflops"] / table["model_gflops"]
    return table[["enhancer", "model", "resolution", "enhancer_gflops", "model_gflops", "overhead_pct"]]


def sympie_breakdown(resolutions: Sequence[str] = tuple(RESOLUTIONS)) -> pd.DataFrame:
    """SyMPIE's GFLOPs split into the NEM (parameter estimator) and the rest (the warp), with the NEM's input size.

    Columns: ``resolution, nem_input, nem_gflops, warp_gflops, total_gflops``.
    """
    sympie = build_enhancer_architecture("sympie")
    rows = []
    for resolution in resolutions:
        height, width = RESOLUTIONS[resolution]
        total, per_module = count_flops(sympie, height, width)
        nem = next((v for k, v in per_module.items() if k.endswith(".nem")), 0)
        nem_height, nem_width = sympie.nem_input(torch.empty(1, 3, height, width, device="meta")).shape[-2:]
        rows.append((resolution, f"{nem_width}x{nem_height}", nem / 1e9, (total - nem) / 1e9, total / 1e9))
    return pd.DataFrame(rows, columns=["resolution", "nem_input", "nem_gflops", "warp_gflops", "total_gflops"])
