"""Shared plumbing: torch-batched and per-image numpy enhancers, with their declared cost."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_sympie import Enhancer
from robustbench_sympie.enhancers import check_enhancer_input

#: resolution label (width x height) -> (height, width), as in ``robustbench_sympie.flops``
COST_RESOLUTIONS: dict[str, tuple[int, int]] = {"224x224": (224, 224), "1920x1080": (1080, 1920)}


def timing_image(height: int, width: int) -> torch.Tensor:
    """A realistic 1 x 3 x H x W timing input: the first demo image, resized, plus seeded noise (sigma 0.1)."""
    from PIL import Image

    from robustbench_sympie.datasets import demo_data_root

    path = sorted(demo_data_root().iterdir())[0]
    image = np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.float32)
    images = torch.from_numpy(image / 255.0).permute(2, 0, 1).unsqueeze(0)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    return (images + 0.1 * noise).clamp(0.0, 1.0)


def seconds_per_image(enhancer: Enhancer, images: torch.Tensor, repeats: int = 3) -> float:
    """Median wall-clock seconds of ``enhancer(images)`` on a 1-image batch (after a small warm-up call)."""
    times = []
    with torch.no_grad():
        enhancer(images[..., :32, :32])  # warm-up: lazy imports, thread pools
        for _ in range(repeats):
            start = time.perf_counter()
            enhancer(images)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


class BaselineEnhancer(Enhancer):
    """An enhancer with a declared cost: FLOPs when torch can count them, measured time otherwise."""

    #: whether ``FlopCounterMode`` on the meta device gives a meaningful count
    flops_countable: ClassVar[bool] = True
    #: how the cost was obtained / what it leaves out
    cost_note: ClassVar[str] = ""
    #: where the loaded weights came from ('' when none are loaded); set by enhancers that load weights
    _weights: str = ""

    @property
    def has_weights(self) -> bool:
        return not self.requires_weights or bool(self._weights)

    @property
    def weights_description(self) -> str:
        return self._weights

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_enhancer_input(images)
        return self.enhance(images).clamp(0.0, 1.0).to(images.dtype)

    def enhance(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Enhance a checked batch; the result is clamped to [0, 1] by :meth:`forward`."""
        raise NotImplementedError

    @classmethod
    def cost(cls, resolutions: Sequence[str] = tuple(COST_RESOLUTIONS), time_it: bool = False,
             **kwargs: Any) -> list[dict[str, Any]]:
        """One row per resolution: GFLOPs/GMACs (NaN when not countable) and, if ``time_it``, CPU s/image."""
        from robustbench_sympie.flops import count_flops

        rows = []
        for label in resolutions:
            height, width = COST_RESOLUTIONS[label]
            gflops = math.nan
            if cls.flops_countable:
                flops, _ = count_flops(cls(**kwargs).to("meta").eval(), height, width)
                gflops = flops / 1e9
            seconds = math.nan
            if time_it:
                repeats = 7 if height * width <= 512 * 512 else 1
                seconds = seconds_per_image(cls(**kwargs).eval(), timing_image(height, width), repeats)
            rows.append({"name": cls.name, "resolution": label, "gflops": gflops, "gmacs": gflops / 2,
                         "seconds_per_image": seconds, "note": cls.cost_note})
        return rows


class NumpyEnhancer(BaselineEnhancer):
    """An enhancer applying a per-image numpy/OpenCV/scikit-image function in a loop over the batch.

    Subclasses implement :meth:`enhance_image` on one ``H x W x 3`` float32 RGB array in [0, 1].
    """

    flops_countable = False
    cost_note = "per-image CPU library call, invisible to FlopCounterMode: see measured time in baselines/COSTS.md"

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        arrays = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
        out = [np.clip(self.enhance_image(np.ascontiguousarray(a)), 0.0, 1.0).astype(np.float32) for a in arrays]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(images.device)

    def enhance_image(self, image: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Enhance one ``H x W x 3`` float32 RGB image in [0, 1]."""
        raise NotImplementedError


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 [0, 255], rounded."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps (radius ``ceil(3 sigma)`` by default)."""
    radius = max(1, math.ceil(3 * sigma)) if radius is None else radius
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def separable_blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise separable convolution of a B x C x H x W batch with replicate padding (same size out)."""
    channels, radius = images.shape[1], kernel.numel() // 2
    kernel = kernel.to(images.device, images.dtype)
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), horizontal, groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), vertical, groups=channels)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of a B x 3 x H x W RGB batch, B x 1 x H x W."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
