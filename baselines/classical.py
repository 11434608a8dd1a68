"""Classical denoisers: Gaussian (torch, batched), median, bilateral, non-local means, total variation,
wavelet (OpenCV / scikit-image, per image) and BM3D (opt-in extra ``bm3d``, non-commercial licence).

Defaults are tuned for moderate noise (sigma around 0.05-0.1 on [0, 1]); each parameter is a constructor argument.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import torch

from robustbench_sympie.errors import MissingExtraError

from ._base import BaselineEnhancer, NumpyEnhancer, gaussian_kernel1d, separable_blur, to_uint8


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Noise standard deviation of an ``H x W x 3`` image in [0, 1] (wavelet MAD, averaged over channels)."""
    from skimage.restoration import estimate_sigma

    with warnings.catch_warnings():  # a flat image has no non-zero detail coefficients: sigma 0
        warnings.simplefilter("ignore", RuntimeWarning)
        sigma = float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))
    return sigma if math.isfinite(sigma) else 0.0


class GaussianDenoise(BaselineEnhancer):
    """Gaussian low-pass filter (separable depthwise convolution, batched)."""

    name = "gaussian_denoise"
    cost_note = "separable depthwise conv, 2 taps x (2r+1) per pixel and channel"

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def enhance(self, images: torch.Tensor) -> torch.Tensor:
        return separable_blur(images, gaussian_kernel1d(self.sigma))


class MedianDenoise(NumpyEnhancer):
    """Median filter (OpenCV ``medianBlur``; float32 for kernel sizes 3 and 5, uint8 otherwise)."""

    name = "median_denoise"

    def __init__(self, ksize: int = 3) -> None:
        super().__init__()
        if ksize < 3 or ksize % 2 == 0:
            raise ValueError(f"ksize must be an odd integer >= 3, got {ksize}")
        self.ksize = ksize

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        if self.ksize <= 5:
            return cv2.medianBlur(image, self.ksize)
        return cv2.medianBlur(to_uint8(image), self.ksize).astype(np.float32) / 255.0


class BilateralDenoise(NumpyEnhancer):
    """Edge-preserving bilateral filter (OpenCV ``bilateralFilter`` on float32; ``sigma_color`` in [0, 1] units)."""

    name = "bilateral_denoise"

    def __init__(self, diameter: int = 9, sigma_color: float = 0.3, sigma_space: float = 2.5) -> None:
        super().__init__()
        self.diameter, self.sigma_color, self.sigma_space = diameter, sigma_color, sigma_space

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        return cv2.bilateralFilter(image, self.diameter, self.sigma_color, self.sigma_space)


class NLMeansDenoise(NumpyEnhancer):
    """Non-local means (OpenCV ``fastNlMeansDenoisingColored``, uint8).

    ``h`` is the filter strength in [0, 1] units; ``None`` (default) sets it per image to
    ``h_factor`` x the wavelet-MAD noise estimate, so clean images are barely touched.
    """

    name = "nlmeans_denoise"

    def __init__(self, h: float | None = None, h_factor: float = 0.5, template_size: int = 7,
                 search_size: int = 21) -> None:
        super().__init__()
        self.h, self.h_factor = h, h_factor
        self.template_size, self.search_size = template_size, search_size

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        h = self.h if self.h is not None else self.h_factor * estimate_noise_sigma(image)
        h255 = max(float(h) * 255.0, 0.5)
        bgr = cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2BGR)
        out = cv2.fastNlMeansDenoisingColored(bgr, None, h255, h255, self.template_size, self.search_size)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


class TVDenoise(NumpyEnhancer):
    """Total-variation denoising (scikit-image ``denoise_tv_chambolle``, all channels jointly)."""

    name = "tv_denoise"

    def __init__(self, weight: float = 0.08, max_iter: int = 200) -> None:
        super().__init__()
        self.weight, self.max_iter = weight, max_iter

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        return denoise_tv_chambolle(image, weight=self.weight, max_num_iter=self.max_iter, channel_axis=-1)


class WaveletDenoise(NumpyEnhancer):
    """Wavelet shrinkage (scikit-image ``denoise_wavelet``, BayesShrink in YCbCr; noise level estimated)."""

    name = "wavelet_denoise"

    def __init__(self, wavelet: str = "db1", method: str = "BayesShrink", mode: str = "soft",
                 sigma: float | None = None) -> None:
        super().__init__()
        self.wavelet, self.method, self.mode, self.sigma = wavelet, method, mode, sigma

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_wavelet

        return denoise_wavelet(image, sigma=self.sigma, wavelet=self.wavelet, mode=self.mode, method=self.method,
                               channel_axis=-1, convert2ycbcr=True, rescale_sigma=True)


class BM3DDenoise(NumpyEnhancer):
    """BM3D (the ``bm3d`` package: opt-in extra ``pip install robustbench-sympie[bm3d]``, non-commercial licence).

    ``sigma`` in [0, 1] units; ``None`` estimates it per image (wavelet MAD).
    """

    name = "bm3d_denoise"

    def __init__(self, sigma: float | None = None) -> None:
        super().__init__()
        try:
            import bm3d  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError("enhancer 'bm3d_denoise' needs the optional 'bm3d' package (extra 'bm3d', "
                                    "non-commercial licence): pip install 'robustbench-sympie[bm3d]'") from exc
        self.sigma = sigma

    def enhance_image(self, image: np.ndarray) -> np.ndarray:
        import bm3d

        sigma = max(self.sigma if self.sigma is not None else estimate_noise_sigma(image), 1e-3)
        if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]):
            # bm3d_rgb's colour transform divides by the chroma spread: grey images take the one-channel path
            out = np.repeat(np.asarray(bm3d.bm3d(image[..., 0], sigma))[..., None], 3, axis=-1)
        else:
            out = bm3d.bm3d_rgb(image, sigma)
        return np.where(np.isfinite(out), out, image).astype(np.float32)  # flat images: keep the input
