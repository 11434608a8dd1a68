"""SyMPIE (Barbato et al., MMSys 2024): a small network that predicts an image-wide colour and blur correction.

The enhancer has two parts:

* the **NEM** (noise estimation module, :class:`SympieNEM`) maps an ImageNet-normalised image to 37 numbers:
  a 3 x 3 colour matrix ``M``, a colour shift ``s`` and a 5 x 5 spatial kernel ``K`` shared by the channels;
* the **DWM** (differentiable warping module, :func:`warp`) applies them in normalised space:
  ``x <- x + s``, ``x_out[c] = sum_d M[d, c] x[d]``, then every channel is cross-correlated with ``K``
  (zero padding 2).

At inference the warped image is clamped per channel to the normalised image of [0, 1], as in the released code.
The module layout of :class:`SympieNEM` matches the released checkpoints key for key, so they load unchanged.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch.nn import functional as F

from .base import Enhancer, check_enhancer_input
from .registry import register_enhancer
from .sympie_weights import (
    SympieWeightsEntry,
    WeightsNotFoundError,
    default_weights_for,
    find_entry,
    load_nem_state_dict,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "KERNEL_SIZE",
    "NEM_MIN_SIDE",
    "NUM_WARP_PARAMS",
    "Sympie",
    "SympieNEM",
    "WeightsNotFoundError",
    "clamp_to_image_range",
    "identity_warp_params",
    "split_warp_params",
    "warp",
    "warp_reference",
]

from .sympie_arch import (  # noqa: E402  (re-exported: the public names of the SyMPIE module)
    IMAGENET_MEAN,
    IMAGENET_STD,
    KERNEL_SIZE,
    NEM_MIN_SIDE,
    NUM_WARP_PARAMS,
    SympieNEM,
    identity_warp_params,
    split_warp_params,
    warp,
    warp_reference,
)


def clamp_to_image_range(
    x: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
) -> torch.Tensor:
    """Clamp each channel of a normalised batch to ``[(0 - mean) / std, (1 - mean) / std]`` (the released clamp)."""
    mean = _channel_stat(IMAGENET_MEAN, x) if mean is None else mean
    std = _channel_stat(IMAGENET_STD, x) if std is None else std
    return torch.clamp(x, min=(0 - mean) / std, max=(1 - mean) / std)


def _channel_stat(values: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------------------
# The enhancer
# ------------------------------------------------------------------------------------------------
WeightsSpec = str | os.PathLike | SympieWeightsEntry | None


@register_enhancer("sympie")
class Sympie(Enhancer):
    """SyMPIE: NEM + DWM, from RGB in [0, 1] to RGB in [0, 1].

    ``forward`` normalises with the ImageNet statistics, lets the NEM predict the warp, warps, clamps each
    channel to the normalised image of [0, 1] (eval mode only), denormalises and clamps to [0, 1] (eval mode
    only, a guard against float rounding). Denormalising is written as ``rgb + (warped - x) * std``, equal to
    ``warped * std + mean`` up to float rounding, so that the identity warp returns its input bit for bit.
    In ``train()`` mode nothing is clamped (unless ``clamp_in_training`` is set), BN uses batch statistics and
    gradients flow to the NEM, like the released training loop (the output may then leave [0, 1]).

    **NEM input size.** The released model was trained on 224 x 224 crops and sees the image as given. By
    default (``nem_max_side=512``) the NEM sees the image as given when ``max(H, W) <= 512``, so 224 x 224
    inputs reproduce the released path exactly. Larger images (e.g. 1920 x 1080) are shown to the NEM as a
    bilinear, antialiased copy whose shorter side is ``nem_size`` (224): this keeps the image content at the
    scale the NEM was trained on and its cost near the 224 x 224 cost (about 2 GFLOPs instead of ~80 at
    1080p). Images with a side below 43 pixels (too small for the NEM's three stride-4 poolings) are likewise
    shown to the NEM resized to shorter side ``nem_size``. The warp is always applied to the full-resolution
    image. ``nem_max_side=None`` never downsizes. Note that the 5 x 5 kernel acts at full resolution whatever
    resolution the NEM saw, so its blur/sharpen scale in pixels is the one learnt at ~224 pixels.

    Args:
        weights: ``"default"`` (the weights entry for ``downstream_model`` if there is one, else untrained;
            a downloadable entry that cannot be fetched raises :class:`WeightsNotFoundError`, a packaged one
            that is missing warns and falls back to untrained), ``None`` (untrained: exactly the identity),
            a weights entry or its name (see :mod:`.sympie_weights`), or a path to a ``.pth``/``.pt``/
            ``.safetensors`` file.
        downstream_model: the classifier the enhancer feeds, used to pick the default weights.
        nem_max_side: largest ``max(H, W)`` shown to the NEM without resizing (``None``: never downsize).
        nem_size: shorter side of the NEM's copy of larger images.
    """

    name = "sympie"
    requires_weights = True
    accepts_weights = True
    depends_on_model = True

    def __init__(
        self,
        weights: WeightsSpec = "default",
        downstream_model: str | None = None,
        nem_max_side: int | None = 512,
        nem_size: int = 224,
    ) -> None:
        super().__init__()
        if nem_size <= 0 or (nem_max_side is not None and nem_max_side <= 0):
            raise ValueError(f"nem_size and nem_max_side must be positive, got {nem_size}, {nem_max_side}")
        self.nem = SympieNEM()
        self.downstream_model = downstream_model
        self.nem_max_side = nem_max_side
        self.nem_size = nem_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        #: clamp like at inference also in ``train()`` mode (a training-recipe option; see train_sympie)
        self.clamp_in_training = False
        self._has_weights = False
        self._weights_description = "untrained (identity initialisation)"
        self._load_weights(weights)
        self.eval()

    # -- weights ------------------------------------------------------------------------------
    @property
    def has_weights(self) -> bool:
        return self._has_weights

    @property
    def weights_description(self) -> str:
        return self._weights_description

    def _load_weights(self, weights: WeightsSpec) -> None:
        if isinstance(weights, str):
            weights = self._default_entry() if weights == "default" else (find_entry(weights) or weights)
        if weights is None:
            return
        if isinstance(weights, SympieWeightsEntry):
            self._check_downstream(weights)
            path = weights.resolve()
            description = f"{weights.name} ({path})"
        else:
            path = os.fspath(weights)
            description = f"file {path}"
        load_nem_state_dict(path, self.nem)
        self._has_weights = True
        self._weights_description = description

    def _default_entry(self) -> SympieWeightsEntry | None:
        entry = default_weights_for(self.downstream_model)
        if entry is None:
            if self.downstream_model is not None:
                self._weights_description = f"untrained (no SyMPIE weights entry for {self.downstream_model!r})"
            return None
        if entry.packaged and not entry.is_available():
            warnings.warn(
                f"SyMPIE weights {entry.name} for {entry.downstream_model!r} are not packaged "
                f"(missing {entry.local_path()}); using an untrained SyMPIE, which is the identity.",
                UserWarning,
                stacklevel=4,
            )
            self._weights_description = f"untrained ({entry.name} unavailable)"
            return None
        return entry

    def _check_downstream(self, entry: SympieWeightsEntry) -> None:
        if self.downstream_model is not None and self.downstream_model.lower() != entry.downstream_model:
            warnings.warn(
                f"SyMPIE weights {entry.name} were trained for {entry.downstream_model!r}, "
                f"used here with {self.downstream_model!r}",
                UserWarning,
                stacklevel=4,
            )

    # -- forward ------------------------------------------------------------------------------
    def nem_input(self, normalised: torch.Tensor) -> torch.Tensor:
        """The batch the NEM sees: as given, or resized to shorter side ``nem_size`` when too large or too small."""
        height, width = normalised.shape[-2:]
        small_enough = self.nem_max_side is None or max(height, width) <= self.nem_max_side
        if small_enough and min(height, width) >= NEM_MIN_SIDE:
            return normalised
        scale = self.nem_size / min(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        return F.interpolate(normalised, size=size, mode="bilinear", align_corners=False, antialias=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_enhancer_input(images)
        rgb = images.to(self.mean.dtype)
        x = (rgb - self.mean) / self.std
        warped = warp(x, self.nem(self.nem_input(x)))
        clamp = not self.training or self.clamp_in_training
        if clamp:
            warped = clamp_to_image_range(warped, self.mean, self.std)
        # denormalise as a residual: equal to ``warped * std + mean`` up to rounding, and exactly the input
        # when the warp is the identity (no normalise/denormalise round-trip error)
        out = rgb + (warped - x) * self.std
        if clamp:
            out = out.clamp(0.0, 1.0)
        return out.to(images.dtype)

    def extra_repr(self) -> str:
        return (
            f"weights={self._weights_description!r}, downstream_model={self.downstream_model!r}, "
            f"nem_max_side={self.nem_max_side}, nem_size={self.nem_size}"
        )
