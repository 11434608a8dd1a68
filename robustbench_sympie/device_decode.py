"""Decoding JPEG files on the evaluation device, with the geometry (resize, crop) applied there.

With ``--decode device`` (the default on CUDA) the DataLoader workers only read the bytes of JPEG files whose
pixels need nothing but decoding and the geometry (clean images, the torch backend's cells, pre-rendered sets);
the batch of byte strings is decoded by nvJPEG (``torchvision.io.decode_jpeg(device="cuda")``) and resized and
centre-cropped on the GPU. Everything else is decoded in the workers as before: other formats, and the cells
the reference backend corrupts there.

Nothing is lost on odd files: a batch that nvJPEG refuses is decoded image by image, an image it refuses (a CMYK
JPEG, say) is decoded by Pillow on the CPU, and one Pillow cannot read either is skipped and reported with its
file, like an unreadable image in the workers.

The pixels differ slightly from the workers' (Pillow decoding and resizing): nvJPEG's inverse DCT and chroma
upsampling, and the tensor resize's rounding. ``decode`` is therefore recorded in the provenance and, when it is
``device``, in the configuration hash.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import SuiteError

CHOICES: tuple[str, ...] = ("auto", "workers", "device")
#: the first bytes of every JPEG file (start-of-image marker and the next marker's prefix)
JPEG_MAGIC = b"\xff\xd8\xff"


def resolve_decode(decode: str, device: torch.device) -> str:
    """``auto`` -> ``device`` on CUDA (nvJPEG), ``workers`` elsewhere; unknown names are an error."""
    if decode == "auto":
        return "device" if device.type == "cuda" else "workers"
    if decode not in CHOICES:
        raise SuiteError(f"--decode {decode!r}: expected one of {', '.join(CHOICES)}")
    return decode


def read_jpeg_bytes(path: str | os.PathLike) -> torch.Tensor | None:
    """A JPEG file's bytes as a 1-D uint8 tensor; None when the file is not a JPEG (``OSError`` if unreadable)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.startswith(JPEG_MAGIC):
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


@dataclass(frozen=True)
class DeviceDecoder:
    """Turns a batch of JPEG bytes (and already decoded pixels) into a uint8 ``B x 3 x crop x crop`` batch on
    ``device``, applying ``geometry`` (a :class:`~.imageio.Preprocess` or :class:`~.imageio.FitToCrop`) there."""

    geometry: Any
    device: torch.device

    def __call__(self, items: Sequence[torch.Tensor], sources: Sequence[str]
                 ) -> tuple[torch.Tensor, list[int], list[str]]:
        """The decoded batch, the positions of the items it holds and a message per item that failed.

        ``items`` are 1-D byte tensors (decoded here) or ``3 x crop x crop`` pixels decoded by a worker.
        """
        encoded = [i for i, item in enumerate(items) if item.dim() == 1]
        decoded = dict(zip(encoded, self._decode([items[i] for i in encoded]), strict=True))
        errors = [f"{sources[i]}: {result}" for i, result in decoded.items() if isinstance(result, str)]
        kept = [i for i in range(len(items)) if not isinstance(decoded.get(i), str)]
        crop = self.geometry.crop
        out = torch.empty(len(kept), 3, crop, crop, dtype=torch.uint8, device=self.device)
        groups: dict[tuple[int, ...] | None, list[int]] = {}  # decoded image size (None: a worker's) -> rows
        for row, i in enumerate(kept):
            groups.setdefault(tuple(decoded[i].shape) if i in decoded else None, []).append(row)
        for size, rows in groups.items():
            stack = torch.stack([decoded.get(kept[row], items[kept[row]]) for row in rows]).to(self.device)
            out[torch.tensor(rows, device=self.device)] = stack if size is None else self.geometry.on_tensor(stack)
        return out, kept, errors

    def _decode(self, data: list[torch.Tensor]) -> list[torch.Tensor | str]:
        """Decode ``data`` on the device: batched, else one by one, else with Pillow; a string for a failure."""
        if not data:
            return []
        try:
            return list(self._torchvision(data))
        except RuntimeError:
            return [self._decode_one(item) for item in data]

    def _torchvision(self, data: torch.Tensor | list[torch.Tensor]) -> Any:
        from torchvision.io import ImageReadMode, decode_jpeg

        target = self.device if self.device.type == "cuda" else "cpu"
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=target)
        if target == "cpu" and self.device.type != "cpu":  # no device decoder (MPS, ...): decoded here, moved
            if isinstance(decoded, list):
                return [image.to(self.device) for image in decoded]
            return decoded.to(self.device)
        return decoded

    def _decode_one(self, item: torch.Tensor) -> torch.Tensor | str:
        try:
            return self._torchvision(item)
        except RuntimeError:
            pass
        from .imageio import load_rgb

        try:
            image = load_rgb(io.BytesIO(item.numpy().tobytes()))
        except OSError as exc:
            return f"cannot decode: {exc}"
        import numpy as np

        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous().to(self.device)
