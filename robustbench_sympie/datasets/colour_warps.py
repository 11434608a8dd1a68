"""SyMPIE's colour warps as an evaluation dataset, ``colour-warps`` (ImageNet-C-style grid, severities 1..5).

The four warps (darken, sunset, night, white_point; :mod:`.colour_warps`) are a registered corruption family,
so ``run_suite --corruptions clean,colour_warp`` already evaluates them within ``imagenet-c``; this dataset does
the same under its own name, so its rows do not mix with ImageNet-C's. Corruptions that are not colour warps
are dropped from the requested list (the command line's default list is ImageNet-C's); when none remain, all
four warps are used. A root rendered by ``build_dataset colour-warps`` is read from disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ..corruptions import SEVERITIES
from ..corruptions.colour_warps import COLOUR_WARPS
from ..imageio import Preprocess
from .base import CLEAN, EvalDataset, expand_corruptions
from .imagenet_c import imagenet_c
from .registry import register_dataset

log = logging.getLogger(__name__)

NAME = "colour-warps"


def warp_corruptions(corruptions: str | Sequence[str]) -> list[str]:
    """The colour warps (and clean) among ``corruptions``; all four warps when none is requested."""
    names = expand_corruptions(corruptions)
    kept = [n for n in names if n == CLEAN or n in COLOUR_WARPS]
    dropped = [n for n in names if n not in kept]
    if dropped:
        log.info("%s: ignoring corruptions that are not colour warps: %s", NAME, ", ".join(dropped))
    if not any(n in COLOUR_WARPS for n in kept):
        kept += list(COLOUR_WARPS)
    return kept


@register_dataset(NAME)
def colour_warps(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,colour_warp",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    corruption_backend: str = "reference",
) -> EvalDataset:
    """SyMPIE's four colour warps at severities 1..5 (plus clean), on the fly or from a rendered root."""
    dataset = imagenet_c(data_root, warp_corruptions(corruptions), severities, seed, preprocess, limit,
                         corruption_backend)
    dataset.name = NAME
    return dataset
