"""The torch corruption contract: batched functions on ``B x 3 x H x W`` tensors on any device.

A torch corruption is ``fn(images, severity, seeds) -> images`` where ``images`` is a float32 batch of
RGB values in [0, 255] (the reference code's scale), ``severity`` in 1..5 (one severity per call: the
runner's batches belong to one cell) and ``seeds`` the per-sample int64 seeds from ``sample_seed``;
it returns float values (any range). :func:`corrupt_batch` wraps it: uint8 in, uint8 out, clipped and
truncated to uint8 exactly as ``imagecorruptions`` does (``np.uint8(np.clip(x, 0, 255))``). A corruption
registered with ``uint8_io`` (work on uint8 pixels, such as a JPEG round trip) instead takes the uint8 batch
itself, which it must not modify, and returns a new uint8 batch on the same device.

On the CPU, :func:`corrupt_batch` runs a corruption on chunks of a few images (:data:`CPU_CHUNK_PIXELS`)
rather than on the whole batch at once: every corruption is per sample, so the pixels are the same, and the
intermediate tensors of a chunk stay in a core's cache. With several torch threads the chunks run side by side,
one per thread, each single-threaded (torch's thread count is 1 while they run): no thread synchronisation per
operation, and a chunk's pixels never depend on the thread count. Measured on 2 cores at batch 64 of 224 x 224
images: whole-batch passes were memory-bound, chunks of 4 images on both threads made the elementwise-heavy
corruptions 2-3x faster (brightness 5.2 -> 2.0 ms per image, shot_noise 5.5 -> 2.3, elastic_transform 5.9 -> 2.3),
and single-threaded chunks of 2 images, one per thread, about 1.2x faster again over the 15 benchmark corruptions.
A corruption may register its own chunk size (``chunk_pixels``): fog's plasma is a fixed number of small operations
per chunk, so it takes chunks of 8 images; motion_blur and snow, whose CPU blur sums are per sample, chunks of 4.

A corruption whose reference is one call of a C library per image (Pillow's BOX/NEAREST resizes) may also
register ``cpu_image_fn``: on the CPU, :func:`corrupt_batch` then calls the library on each
uint8 image directly, on torch's threads (the libraries release the GIL), skipping the float conversions; on
other devices the batched ``fn`` runs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TorchCorruptionFn = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]
#: ``fn(image, severity) -> image`` on one ``H x W x 3`` uint8 array (deterministic corruptions only)
CpuImageFn = Callable[[np.ndarray, int], np.ndarray]

#: name -> batched torch implementation (filled by the modules of this package on import)
TORCH_CORRUPTIONS: dict[str, TorchCorruption] = {}


#: on the CPU, a batch is corrupted in chunks of about this many pixels (2 images of 224 x 224, at least one)
CPU_CHUNK_PIXELS = 2 * 224 * 224


@dataclass(frozen=True)
class TorchCorruption:
    """A registered torch corruption, a note on how it departs from the reference (if it does), the pixels of
    its CPU chunks (``chunk_pixels``, see :func:`chunk_size`; ``None`` for code that parallelises the batch
    itself), its per-image uint8 function for CPU batches, if it has one (``cpu_image_fn``, see the module
    doc), and whether ``fn`` takes and returns the uint8 batch itself (``uint8_io``: for work on uint8 pixels, such
    as a JPEG round trip, with no float round trip around it)."""

    name: str
    fn: TorchCorruptionFn
    note: str = ""
    chunk_pixels: int | None = CPU_CHUNK_PIXELS
    cpu_image_fn: CpuImageFn | None = None
    uint8_io: bool = False

    def __post_init__(self) -> None:
        chunk = self.chunk_pixels
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"chunk_pixels of torch corruption {self.name!r} must be a positive int or None, "
                             f"got {chunk!r}")

    def __call__(self, images: torch.Tensor, severity: int, seeds: torch.Tensor) -> torch.Tensor:
        return corrupt_batch(self, images, severity, seeds)


def register_torch_corruption(
    name: str, note: str = "", *, chunk_pixels: int | None = CPU_CHUNK_PIXELS,
    cpu_image_fn: CpuImageFn | None = None, uint8_io: bool = False,
) -> Callable[[TorchCorruptionFn], TorchCorruptionFn]:
    """Decorator adding ``fn(images_0_255, severity, seeds)`` as the torch version of corruption ``name``."""

    def decorator(fn: TorchCorruptionFn) -> TorchCorruptionFn:
        if name in TORCH_CORRUPTIONS:
            raise ValueError(f"torch corruption {name!r} is registered twice")
        TORCH_CORRUPTIONS[name] = TorchCorruption(name, fn, note, chunk_pixels, cpu_image_fn, uint8_io)
        return fn

    return decorator


def conv2d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight)`` whose result for one image does not depend on the other images of its batch.

    cuDNN picks its algorithm by shape, and some (Winograd, FFT) round differently from others, so an image's
    pixels could change with the batch size (seen on an H200 for spatter, whose Canny thresholds Sobel responses);
    on CUDA the convolution therefore runs without cuDNN, in PyTorch's own kernel, which computes every image of
    the batch alike (im2col and one GEMM per image). Elsewhere it is plain ``F.conv2d``.
    """
    if x.is_cuda:
        with torch.backends.cudnn.flags(enabled=False):
            return F.conv2d(x, weight)
    return F.conv2d(x, weight)


def corrupt_batch(corruption: TorchCorruption, images: torch.Tensor, severity: int,
                  seeds: torch.Tensor) -> torch.Tensor:
    """Corrupt a uint8 ``B x 3 x H x W`` batch at ``severity``; returns uint8 on the same device."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"torch corruptions take uint8 B x 3 x H x W batches, got {images.dtype} "
                         f"{tuple(images.shape)}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity of {corruption.name!r} must be in 1..5, got {severity!r}")
    seeds = torch.as_tensor(seeds, dtype=torch.int64)
    if seeds.shape != (images.shape[0],):
        raise ValueError(f"one seed per image expected: {images.shape[0]} images, seeds of shape {tuple(seeds.shape)}")
    if images.shape[0] == 0:
        return images.clone()
    if corruption.cpu_image_fn is not None and images.device.type == "cpu":
        return _corrupt_images_on_cpu(corruption.cpu_image_fn, images, severity)
    on_cpu_chunks = corruption.chunk_pixels is not None and images.device.type == "cpu"
    chunk = chunk_size(images, corruption.chunk_pixels) if on_cpu_chunks else images.shape[0]
    if chunk >= images.shape[0]:
        return _corrupt_chunk(corruption, images, severity, seeds)
    out = torch.empty_like(images)
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()  # thread-local modes

    def run(start: int) -> None:
        part = slice(start, start + chunk)
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            out[part] = _corrupt_chunk(corruption, images[part], severity, seeds[part])

    starts = range(0, images.shape[0], chunk)
    threads = min(torch.get_num_threads(), len(starts))
    if threads == 1:
        for start in starts:
            run(start)
        return out
    list(thread_pool(threads, "chunks").map(run, starts))
    return out


def _corrupt_images_on_cpu(fn: CpuImageFn, images: torch.Tensor, severity: int) -> torch.Tensor:
    """``fn`` on each uint8 image of a CPU batch, the images dealt into one share per torch thread, one task each
    (a task per image cost more than it saved: pixelate on 2 threads at batch 64 took 0.41-0.49 ms per image
    that way, 0.32-0.35 with one task per thread)."""
    pixels = images.permute(0, 2, 3, 1).contiguous().numpy()  # B x H x W x 3
    out = np.empty_like(pixels)

    def run(indices: range) -> None:
        for index in indices:
            result = fn(pixels[index], severity)
            if result.shape != pixels.shape[1:]:
                raise RuntimeError(f"cpu_image_fn changed an image's shape {pixels.shape[1:]} -> {result.shape}")
            out[index] = result

    threads = min(torch.get_num_threads(), len(pixels))
    if threads > 1:
        parts = [range(len(pixels))[part::threads] for part in range(threads)]
        list(thread_pool(threads, "images").map(run, parts))
    else:
        run(range(len(pixels)))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def chunk_size(images: torch.Tensor, chunk_pixels: int = CPU_CHUNK_PIXELS) -> int:
    """Images per CPU chunk of a ``B x 3 x H x W`` batch: about ``chunk_pixels`` pixels, at least one."""
    return max(1, chunk_pixels // max(1, images.shape[-2] * images.shape[-1]))


def _corrupt_chunk(corruption: TorchCorruption, images: torch.Tensor, severity: int,
                   seeds: torch.Tensor) -> torch.Tensor:
    out = corruption.fn(images if corruption.uint8_io else images.float(), severity, seeds)
    if out.shape != images.shape:
        raise RuntimeError(f"torch corruption {corruption.name!r} changed the batch shape "
                           f"{tuple(images.shape)} -> {tuple(out.shape)}")
    if corruption.uint8_io:
        if out.dtype != torch.uint8 or out.device != images.device:
            raise RuntimeError(f"torch corruption {corruption.name!r} is registered with uint8_io: it must return "
                               f"uint8 on {images.device}, returned {out.dtype} on {out.device}")
        return out
    return out.clamp_(0, 255).to(torch.uint8)  # truncation, as np.uint8 does on the reference path


def _single_threaded() -> None:
    """Make the calling thread's torch ops single-threaded (after torch's lazy per-thread set-up, which would
    otherwise reset it to the process-wide count on the thread's first op)."""
    torch.get_num_threads()
    torch.set_num_threads(1)


def _in_new_thread(fn: Callable[[], int | None]) -> int | None:
    """``fn()`` run in a fresh thread (which starts from torch's process-wide thread count) and its result."""
    result: list[int | None] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]


@functools.lru_cache(maxsize=8)
def thread_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` threads for torch work that releases the GIL (one pool per ``name``,
    so a task of one pool never waits on its own pool), each thread running torch single-threaded.

    The pool's threads run side by side, so their own torch ops must not spread over the cores too. Setting that
    per call (``torch.set_num_threads(1)`` around the work, then back, under a process-wide lock) is what this
    module did before; each change also clears oneDNN's cache of compiled convolutions, which the model's next
    forward pass rebuilds (measured alone on 2 CPU cores: efficientnet_lite0's forward at batch 32 took 668 ms
    after such a change against 585 ms without, medians of 12). Instead each thread is made single-threaded once,
    when the pool starts: OpenMP's thread count is per thread, and torch's process-wide count (what new threads
    start from) is restored afterwards, from a fresh thread, so the caller's own count is untouched.
    """
    process_wide = _in_new_thread(torch.get_num_threads)
    started = threading.Barrier(threads + 1)
    pool = ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=_single_threaded)
    for _ in range(threads):  # start every thread now (each waits for the others), so all are single-threaded
        pool.submit(started.wait)
    started.wait()
    _in_new_thread(lambda: torch.set_num_threads(process_wide))
    return pool
