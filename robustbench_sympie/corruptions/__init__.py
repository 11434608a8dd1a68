"""Image corruptions: the registry, per-sample seeding, and the corruption families.

Families (registered when the registry is first queried): ImageNet-C (:mod:`.imagenet_c`, through
``imagecorruptions``), ImageNet-C-Bar (:mod:`.imagenet_c_bar`) and SyMPIE's colour warps (:mod:`.colour_warps`).
Batched torch versions live in :mod:`.torch_backend`.
"""

from __future__ import annotations

from .base import (
    CORRUPTION_GROUPS,
    CORRUPTIONS,
    SEVERITIES,
    Corruption,
    derive_seed,
    get_corruption,
    legacy_numpy_seed,
    list_corruptions,
    register_corruption,
    sample_seed,
)

__all__ = ["CORRUPTIONS", "CORRUPTION_GROUPS", "SEVERITIES", "Corruption", "derive_seed", "get_corruption",
           "legacy_numpy_seed", "list_corruptions", "register_corruption", "sample_seed"]
