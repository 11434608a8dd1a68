"""Learned denoisers that load their authors' released weight files: DnCNN, DRUNet, NAFNet, Restormer, SCUNet,
SwinIR and MPRNet.

The architectures come from ``deepinv`` 0.5 (BSD-3; built with ``pretrained=None``: nothing is ever
downloaded), except NAFNet, which deepinv lacks: :class:`NAFNetNetwork` is our own compact version with the
authors' state-dict key layout. Each enhancer takes ``weights=PATH`` (the runner's ``--enhancer-weights``), a
local copy of the file named in its docstring. Without one it is still built (randomly initialised, for the FLOPs
leaderboard) but ``has_weights`` is False, so ``run_suite`` refuses to score it unless ``--allow-untrained``, and
then reports it as ``NAME[untrained]``: a random network is never scored as the published model.

Loading: ``torch.load(..., weights_only=True)``; the wrappers ``params``, ``params_ema``, ``state_dict`` and
``model`` are unwrapped (in that order of preference) and a ``module.`` prefix is stripped; keys must match
exactly (an error names the file and the first missing / unexpected keys).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_sympie.errors import DataError, WeightsFormatError, WeightsNotFoundError
from robustbench_sympie.weights_hub import load_state_dict

from ._base import BaselineEnhancer
from .ffdnet import estimate_sigma_haar

#: checkpoint wrappers, in order of preference (``params`` before ``params_ema``, as the authors' test scripts do)
WRAPPER_KEYS: tuple[str, ...] = ("params", "params_ema", "state_dict", "model")


class WeightsError(WeightsFormatError):
    """A weights file that cannot be read or does not match the architecture."""


def unwrap_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint: unwrap ``params``/``params_ema``/``state_dict``/``model``, drop ``module.``."""
    state = checkpoint
    while isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        key = next((k for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if key is None:
            break
        state = state[key]
    if not isinstance(state, Mapping):
        raise WeightsError(f"expected a state dict, got {type(state).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right of a batch so that H and W are multiples of ``multiple``."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")


class LearnedDenoiser(BaselineEnhancer):
    """A denoising network that needs its authors' released weights (``weights=PATH``) to be scored.

    Subclasses set :attr:`weights_file`, :attr:`weights_source` and :attr:`pad_multiple` and implement
    :meth:`build_network` (and :meth:`run` when the network takes more than the image).
    """

    requires_weights = True
    accepts_weights = True
    #: the weight file the authors released, and where to get it
    weights_file: ClassVar[str] = ""
    weights_source: ClassVar[str] = ""
    #: H and W are padded (replicate, bottom/right) to a multiple of this before the network and cropped after
    pad_multiple: ClassVar[int] = 1

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.network = self.build_network()
        if weights is not None:
            self.load_weights(weights)
        self.network.eval().requires_grad_(False)

    # -- weights --------------------------------------------------------------------------------------------------
    @classmethod
    def weights_hint(cls) -> str:
        """Which file to pass with ``--enhancer-weights`` and where the authors released it."""
        return f"{cls.name} needs the authors' weights {cls.weights_file} ({cls.weights_source}): " \
               f"pass --enhancer-weights PATH (weights=PATH)"

    def build_network(self) -> nn.Module:  # pragma: no cover - abstract
        """The architecture, randomly initialised, with nothing downloaded."""
        raise NotImplementedError

    def convert_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map another released key layout onto :attr:`network`'s (identity by default)."""
        return state

    def load_weights(self, weights: str | os.PathLike) -> None:
        """Load a local weights file strictly into :attr:`network` (:class:`WeightsError` when it does not fit)."""
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"{self.name}: weights file {str(path)!r} not found; {self.weights_hint()}")
        try:
            checkpoint = load_state_dict(path, what=f"enhancer {self.name!r}")
            state = self.convert_state_dict(unwrap_state_dict(checkpoint))
        except DataError as exc:  # not a plain state dict: the message says how to convert a trusted file
            raise WeightsError(f"{self.name}: {exc}") from None
        except Exception as exc:
            raise WeightsError(f"{self.name}: cannot read weights file {str(path)!r}: {exc}") from exc
        expected = self.network.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            raise WeightsError(
                f"{self.name}: weights file {str(path)!r} does not match the architecture: "
                f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}; "
                f"expected {self.weights_file} ({self.weights_source})")
        try:
            self.network.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # shape mismatches
            raise WeightsError(f"{self.name}: weights file {str(path)!r} does not fit the architecture: "
                               f"{str(exc).splitlines()[-1].strip()[:300]}") from exc
        self._weights = str(path)

    # -- forward --------------------------------------------------------------------------------------------------
    def run(self, images: torch.Tensor) -> torch.Tensor:
        """The network on a padded batch (override for networks that take more than the image)."""
        return self.network(images)

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        out = self.run(pad_to_multiple(images.float(), self.pad_multiple))
        return out[..., :height, :width]


# -- DnCNN ----------------------------------------------------------------------------------------------------------
class DnCNN(LearnedDenoiser):
    """DnCNN (Zhang et al., TIP 2017), colour blind model CDnCNN-B: 20 conv layers, 64 channels (deepinv ``DnCNN``).

    Weights: ``dncnn_color_blind.pth`` from KAIR (https://github.com/cszn/KAIR/releases/tag/v1.0, layout
    ``model.N.weight``, the network predicts the noise) or deepinv's ``dncnn_sigma2_color.pth``
    (https://huggingface.co/deepinv/dncnn, deepinv layout); both load.
    """

    name = "dncnn"
    weights_file = "dncnn_color_blind.pth"
    weights_source = "https://github.com/cszn/KAIR/releases/download/v1.0/dncnn_color_blind.pth"
    cost_note = "CDnCNN-B: 20 conv layers of 64 channels at full resolution"
    depth: ClassVar[int] = 20

    def build_network(self) -> nn.Module:
        from deepinv.models import DnCNN as Network

        return Network(in_channels=3, out_channels=3, depth=self.depth, bias=True, nf=64, pretrained=None,
                       device=None)

    def convert_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not any(k.startswith("model.") for k in state):
            return state
        # KAIR: x - model(x), a Sequential of conv/ReLU pairs; deepinv: x + out_conv(...): negate the last conv
        indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.")})
        names = ["in_conv"] + [f"conv_list.{i}" for i in range(len(indices) - 2)] + ["out_conv"]
        converted = {}
        for name, index in zip(names, indices, strict=True):
            for suffix in ("weight", "bias"):
                if f"model.{index}.{suffix}" in state:
                    tensor = state[f"model.{index}.{suffix}"]
                    converted[f"{name}.{suffix}"] = -tensor if name == "out_conv" else tensor
        return converted


# -- DRUNet ---------------------------------------------------------------------------------------------------------
class DRUNet(LearnedDenoiser):
    """DRUNet (Zhang et al., TPAMI 2022), colour, noise-level conditioned (deepinv ``DRUNet``, KAIR key layout).

    Weights: ``drunet_color.pth`` from KAIR (https://github.com/cszn/KAIR/releases/tag/v1.0; also
    https://huggingface.co/deepinv/drunet). Sigma: estimated per image as in ``ffdnet`` (MAD of the finest diagonal
    Haar coefficients / 0.6745) times ``sigma_scale``, or fixed with ``sigma`` (in [0, 1] units).
    """

    name = "drunet"
    weights_file = "drunet_color.pth"
    weights_source = "https://github.com/cszn/KAIR/releases/download/v1.0/drunet_color.pth"
    pad_multiple = 8
    cost_note = "4-scale residual U-Net (64-512 channels); the Haar noise estimate is not counted"

    def __init__(self, weights: str | os.PathLike | None = None, sigma: float | None = None,
                 sigma_scale: float = 1.0) -> None:
        self.sigma, self.sigma_scale = sigma, sigma_scale
        super().__init__(weights)

    def build_network(self) -> nn.Module:
        from deepinv.models import DRUNet as Network

        return Network(in_channels=3, out_channels=3, pretrained=None, device=None)

    def run(self, images: torch.Tensor) -> torch.Tensor:
        if self.sigma is not None:
            sigma = torch.full((images.shape[0], 1, 1, 1), self.sigma, device=images.device, dtype=images.dtype)
        else:
            sigma = self.sigma_scale * estimate_sigma_haar(images)
        noise_map = sigma.to(images.dtype).expand(-1, 1, *images.shape[-2:])
        return self.network.forward_unet(torch.cat([images, noise_map], dim=1))


# -- NAFNet ---------------------------------------------------------------------------------------------------------
class LayerNorm2d(nn.Module):
    """Layer norm over the channels of a B x C x H x W map (eps 1e-6), parameters ``weight`` and ``bias``."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt() * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: (norm, 1x1, depthwise 3x3, gate, channel attention, 1x1) + (norm, FFN gate)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = 2 * channels
        self.norm1, self.norm2 = LayerNorm2d(channels), LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden // 2, hidden // 2, 1))
        self.conv3 = nn.Conv2d(hidden // 2, channels, 1)
        self.conv4 = nn.Conv2d(channels, hidden, 1)
        self.conv5 = nn.Conv2d(hidden // 2, channels, 1)
        self.sg = SimpleGate()
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inputs))))
        y = inputs + self.conv3(x * self.sca(x)) * self.beta
        return y + self.conv5(self.sg(self.conv4(self.norm2(y)))) * self.gamma


class NAFNetNetwork(nn.Module):
    """NAFNet (Chen et al., ECCV 2022) U-Net with the authors' module names (``intro``, ``encoders``, ``downs``,
    ``middle_blks``, ``ups``, ``decoders``, ``ending``); defaults: the SIDD denoising model, width 32."""

    def __init__(self, width: int = 32, enc_blk_nums: tuple[int, ...] = (2, 2, 4, 8), middle_blk_num: int = 12,
                 dec_blk_nums: tuple[int, ...] = (2, 2, 2, 2), channels: int = 3) -> None:
        super().__init__()
        self.intro = nn.Conv2d(channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, channels, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
        self.multiple = 2 ** len(enc_blk_nums)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """H and W must be multiples of :attr:`multiple`."""
        x = self.intro(images)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            x = decoder(up(x) + skip)
        return self.ending(x) + images


class NAFNet(LearnedDenoiser):
    """NAFNet-width32 for real-noise denoising (SIDD), our own module with the authors' key layout.

    Weights: ``NAFNet-SIDD-width32.pth`` (key ``params``) from https://github.com/megvii-research/NAFNet
    (README, "Results and Pre-trained Models").
    """

    name = "nafnet"
    weights_file = "NAFNet-SIDD-width32.pth"
    weights_source = "https://github.com/megvii-research/NAFNet (Google Drive link in its README)"
    pad_multiple = 16
    cost_note = "U-Net of NAFBlocks (width 32); layer norms and gates not counted"

    def build_network(self) -> nn.Module:
        return NAFNetNetwork()


# -- Restormer ------------------------------------------------------------------------------------------------------
class Restormer(LearnedDenoiser):
    """Restormer (Zamir et al., CVPR 2022), blind colour Gaussian denoising (deepinv ``Restormer``).

    Weights: ``gaussian_color_denoising_blind.pth`` (key ``params``) from https://github.com/swz30/Restormer
    (Denoising/README.md, Google Drive).
    """

    name = "restormer"
    weights_file = "gaussian_color_denoising_blind.pth"
    weights_source = "https://github.com/swz30/Restormer (Denoising/README.md)"
    pad_multiple = 8
    cost_note = "transposed (channel) attention U-Net; layer norms and softmax not counted"

    def build_network(self) -> nn.Module:
        from deepinv.models import Restormer as Network

        return Network(in_channels=3, out_channels=3, LayerNorm_type="BiasFree", pretrained=None, device=None)

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.forward_restormer(images)


# -- SCUNet ---------------------------------------------------------------------------------------------------------
class SCUNet(LearnedDenoiser):
    """SCUNet (Zhang et al., MIR 2023), blind real-image colour denoising (deepinv ``SCUNet``).

    Weights: ``scunet_color_real_psnr.pth`` from https://github.com/cszn/SCUNet (releases v1.0).
    """

    name = "scunet"
    weights_file = "scunet_color_real_psnr.pth"
    weights_source = "https://github.com/cszn/KAIR/releases/download/v1.0/scunet_color_real_psnr.pth"
    pad_multiple = 64  # the network pads to 64 itself; padding here keeps it visible
    cost_note = "Swin-conv U-Net (window 8); softmax and norms not counted"

    def build_network(self) -> nn.Module:
        from deepinv.models import SCUNet as Network

        return Network(in_nc=3, dim=64, pretrained=None, device=None)


# -- SwinIR ---------------------------------------------------------------------------------------------------------
class SwinIR(LearnedDenoiser):
    """SwinIR-M (Liang et al., ICCVW 2021), colour Gaussian denoising (deepinv ``SwinIR``, the authors' layout).

    Weights: ``005_colorDN_DFWB_s128w8_SwinIR-M_noise15.pth`` (or ``_noise25`` / ``_noise50``; key ``params``)
    from https://github.com/JingyunLiang/SwinIR/releases/tag/v0.0.
    """

    name = "swinir"
    weights_file = "005_colorDN_DFWB_s128w8_SwinIR-M_noise15.pth"
    weights_source = "https://github.com/JingyunLiang/SwinIR/releases/tag/v0.0"
    pad_multiple = 8
    cost_note = "windowed self-attention at full resolution (180 channels, 36 blocks); softmax and norms not counted"

    def build_network(self) -> nn.Module:
        from deepinv.models import SwinIR as Network

        network = Network(img_size=128, in_chans=3, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6,
                          window_size=8, mlp_ratio=2, upscale=1, img_range=1.0, upsampler="", resi_connection="1conv",
                          pretrained=None)
        share_shift_masks(network)
        return network


def share_shift_masks(network: nn.Module) -> None:
    """Let SwinIR's blocks share their attention masks (one per shift) instead of each building one on the CPU at every
    call whenever the input is not 128 x 128 (36 masks of nW x 64 x 64), and skip them on the meta device."""
    cache: dict[tuple[int, ...], torch.Tensor] = {}
    for block in network.modules():
        if type(block).__name__ != "SwinTransformerBlock":
            continue

        def calculate_mask(x_size, block=block, original=block.calculate_mask):
            window = block.window_size
            if block.norm1.weight.is_meta:  # FLOPs counting: the mask costs no multiply-adds
                windows = (x_size[0] // window) * (x_size[1] // window)
                return torch.empty(windows, window * window, window * window, device="meta")
            key = (*x_size, window, block.shift_size)
            if key not in cache:
                if any(k[:2] != key[:2] for k in cache):
                    cache.clear()  # keep the masks of the latest input size only
                cache[key] = original(x_size)
            return cache[key]

        block.calculate_mask = calculate_mask


# -- MPRNet ---------------------------------------------------------------------------------------------------------
class MPRNet(LearnedDenoiser):
    """MPRNet (Zamir et al., CVPR 2021), real-image denoising model (deepinv ``MPRNet``, ``n_feat`` 80).

    Weights: ``model_denoising.pth`` (key ``state_dict``) from https://github.com/swz30/MPRNet
    (Denoising/README.md, Google Drive).
    """

    name = "mprnet"
    weights_file = "model_denoising.pth"
    weights_source = "https://github.com/swz30/MPRNet (Denoising/README.md)"
    pad_multiple = 8
    cost_note = "three-stage multi-patch network (80 channels); PReLU and attention gates not counted"

    def build_network(self) -> nn.Module:
        from deepinv.models import MPRNet as Network

        return Network(in_channels=3, out_channels=3, n_feat=80, scale_unetfeats=48, scale_orsnetfeats=32, num_cab=8,
                       pretrained=None, device=None)

    def run(self, images: torch.Tensor) -> torch.Tensor:
        out = self.network(images)
        return out[0] if isinstance(out, list | tuple) else out
