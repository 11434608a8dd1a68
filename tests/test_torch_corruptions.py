"""Torch backend (noise, blur, digital) against the ``imagecorruptions`` reference on real image crops.

Deterministic corruptions must match the reference's pixels (mean absolute difference bounds measured
at 0.000 grey levels, with margin); random ones must match its statistics (PSNR to the clean image,
per-channel noise spread). Every corruption is checked for batch invariance.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import robustbench_sympie.corruptions.torch_backend as tb
from robustbench_sympie.corruptions import get_corruption
from robustbench_sympie.corruptions.torch_backend import blur as tblur
from robustbench_sympie.corruptions.torch_backend import rng

DEMO = Path(__file__).resolve().parents[1] / "robustbench_sympie" / "data" / "demo"
FILES = ("n01440764_tench.JPEG", "n02123159_tiger_cat.JPEG", "n03345487_fire_engine.JPEG")
SIZE = 64

#: name -> bound on the mean absolute difference to the reference (grey levels); measured 0.000 on CPU
DETERMINISTIC = {
    "contrast": 0.05, "brightness": 0.05, "saturate": 0.05, "defocus_blur": 0.05, "gaussian_blur": 0.05,
    "zoom_blur": 0.05, "pixelate": 0.05,
    "jpeg_compression": 0.5,  # libjpeg via torchvision (every device) vs via Pillow: identical here, builds may differ
}
#: name -> allowed gap of the mean PSNR (dB) to the reference's (measured gaps <= 0.3 dB)
RANDOM = {
    "gaussian_noise": 0.5, "shot_noise": 0.5, "impulse_noise": 0.5, "speckle_noise": 0.5,
    "glass_blur": 1.0, "motion_blur": 1.5, "elastic_transform": 1.0,
}
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
MINE = tuple(DETERMINISTIC) + tuple(RANDOM)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    out = []
    for name in FILES:
        im = Image.open(DEMO / name).convert("RGB")
        w, h = im.size
        left, top = (w - SIZE) // 2, (h - SIZE) // 2
        out.append(np.array(im.crop((left, top, left + SIZE, top + SIZE))))
    return out


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _torch_outputs(name: str, images: list[np.ndarray], severity: int, seeds) -> list[np.ndarray]:
    out = tb.get_torch_corruption(name)(_batch(images), severity, torch.tensor(seeds, dtype=torch.int64))
    assert out.dtype == torch.uint8 and out.shape == (len(images), 3, *images[0].shape[:2])
    return list(out.permute(0, 2, 3, 1).numpy())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-12))


def test_registry_and_errors():
    names = tb.list_torch_corruptions()
    assert set(MINE) <= set(names)
    assert tb.get_torch_corruption("contrast") is tb.TORCH_CORRUPTIONS["contrast"]
    with pytest.raises(KeyError, match="no torch implementation; use --corruption-backend reference"):
        tb.get_torch_corruption("no_such_corruption")


@pytest.mark.parametrize("severity", [0, 6])
def test_severity_outside_range_raises(severity):
    images = torch.zeros((1, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(ValueError, match="severity"):
        tb.get_torch_corruption("gaussian_noise")(images, severity, torch.tensor([1]))


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_deterministic_matches_reference(name, severity, crops):
    ref = get_corruption(name)
    outs = _torch_outputs(name, crops, severity, [11, 12, 13])
    for image, out in zip(crops, outs, strict=True):
        expected = ref(image, severity, 0)
        mad = np.abs(expected.astype(np.float64) - out.astype(np.float64)).mean()
        assert mad <= DETERMINISTIC[name], f"{name} s{severity}: mean abs diff {mad:.4f}"


@pytest.mark.parametrize("name", sorted(RANDOM))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_random_matches_reference_statistics(name, severity, crops):
    ref = get_corruption(name)
    seeds = [101, 202, 303]
    outs = _torch_outputs(name, crops, severity, seeds)
    refs = [ref(image, severity, seed) for image, seed in zip(crops, seeds, strict=True)]
    psnr_ref = np.mean([_psnr(i, r) for i, r in zip(crops, refs, strict=True)])
    psnr_torch = np.mean([_psnr(i, o) for i, o in zip(crops, outs, strict=True)])
    assert abs(psnr_ref - psnr_torch) <= RANDOM[name], f"PSNR ref {psnr_ref:.2f} torch {psnr_torch:.2f}"
    if name in NOISE:  # the per-channel spread of the noise, pooled over the images
        def spread(outputs):
            diffs = [(o.astype(np.float64) - i).reshape(-1, 3) for i, o in zip(crops, outputs, strict=True)]
            return np.concatenate(diffs).std(0)

        # impulse noise flips only 3% of the values at severity 1: its spread is the noisiest estimate
        rtol = 0.12 if name == "impulse_noise" else 0.05
        np.testing.assert_allclose(spread(outs), spread(refs), rtol=rtol, atol=0.5)


@pytest.mark.parametrize("name", MINE)
def test_batch_invariance(name, crops):
    corruption = tb.get_torch_corruption(name)
    batch = _batch(crops)
    seeds = torch.tensor([5, 6, 7])
    together = corruption(batch, 3, seeds)
    alone = corruption(batch[2:3], 3, seeds[2:3])
    assert torch.equal(together[2], alone[0])
    swapped = corruption(batch[[2, 0]], 3, seeds[[2, 0]])
    assert torch.equal(swapped[0], together[2]) and torch.equal(swapped[1], together[0])


@pytest.mark.parametrize("by_fft", [False, True], ids=["shifted-views", "fft"])
@pytest.mark.parametrize("angle", [-44.0, -17.5, 0.0, 30.0, 45.0])
def test_motion_kernel_matches_reference_at_given_angle(angle, by_fft, crops):
    """Both ways of motion_blur_batch (the CPU's shifted views, the FFT used on other devices) give the reference's
    float64 sums at a given angle."""
    from imagecorruptions.corruptions import _motion_blur

    image = crops[0]
    expected = np.clip(_motion_blur(image, radius=15, sigma=8, angle=angle), 0, 255)
    out = tblur.motion_blur_batch(_batch([image]).double(), 15, 8, torch.tensor([angle], dtype=torch.float64),
                                  by_fft=by_fft)
    out = out[0].permute(1, 2, 0).clamp(0, 255).numpy()
    assert np.abs(out - expected).max() < 1e-6


def test_glass_loop_matches_sequential_reference_loop():
    """Pointer jumping reproduces the reference's sequential copy loop for the same offsets."""
    h, w, delta, iterations = 23, 19, 2, 3
    seeds = torch.tensor([3, 4])
    sources = tblur.glass_shuffle_sources(seeds, h, w, delta, iterations, "cpu")
    for b in range(2):
        x = np.arange(h * w).reshape(h, w, 1).repeat(2, axis=2)  # views: the reference's tuple "swap"
        for it in range(iterations):
            d = torch.stack(tblur.glass_offsets(seeds[b:b + 1], h * w, delta, 1 + it, "cpu"))[:, 0].view(2, h, w)
            for hh in range(h - delta, delta, -1):
                for ww in range(w - delta, delta, -1):
                    dy, dx = int(d[0, hh, ww]), int(d[1, hh, ww])
                    x[hh, ww], x[hh + dy, ww + dx] = x[hh + dy, ww + dx], x[hh, ww]
        assert np.array_equal(x[..., 0].reshape(-1), sources[b].numpy())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])])
@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_glass_offsets_are_uniform_and_independent(delta, device):
    """Every (dy, dx) pair of [-delta, delta)^2 about equally often (chi-square), per-sample streams."""
    seeds = torch.arange(8)
    dy, dx = tblur.glass_offsets(seeds, 20000, delta, 1, device)
    dy, dx = dy.cpu(), dx.cpu()
    assert dy.dtype == dx.dtype == torch.int32 and dy.shape == dx.shape == (8, 20000)
    assert int(dy.min()) == int(dx.min()) == -delta and int(dy.max()) == int(dx.max()) == delta - 1
    span = 2 * delta
    counts = torch.bincount(((dy + delta) * span + (dx + delta)).reshape(-1).long(), minlength=span * span).double()
    expected = dy.numel() / span ** 2
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = span ** 2 - 1
    assert chi2 < dof + 4 * math.sqrt(2 * dof)  # 4 standard deviations of the chi-square (measured: below 0)
    again = [part.cpu() for part in tblur.glass_offsets(seeds[3:5], 20000, delta, 1, device)]
    assert torch.equal(again[0], dy[3:5]) and torch.equal(again[1], dx[3:5])
    assert not torch.equal(dy[0], dy[1])


def test_elastic_resampling_matches_scipy_map_coordinates():
    """The deterministic half of elastic_transform: bilinear 'reflect' resampling at given coordinates."""
    from scipy.ndimage import map_coordinates

    from robustbench_sympie.corruptions.torch_backend.digital import grid_sample_reflect

    gen = np.random.default_rng(0)
    image = gen.random((30, 40, 3)).astype(np.float32)
    cy, cx = gen.uniform(-6, 36, (30, 40)), gen.uniform(-6, 46, (30, 40))
    channel = np.broadcast_to(np.arange(3), (30, 40, 3))
    expected = map_coordinates(image, (np.repeat(cy[..., None], 3, -1), np.repeat(cx[..., None], 3, -1), channel),
                               order=1, mode="reflect")
    out = grid_sample_reflect(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(cy)[None],
                              torch.from_numpy(cx)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(out - expected).max() < 1e-4


def test_zoom_factors_are_numpy_arange():
    """np.arange's values (start + j * ((start + step) - start)) decide the crop sizes of clipped_zoom."""
    tables = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
              np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)]
    for severity, table in enumerate(tables, 1):
        assert tblur._zoom_factors(severity) == list(table)


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_matches_reference_on_small_non_square(name, crops):
    image = np.ascontiguousarray(crops[1][3:44, 2:59])  # 41 x 57
    out = _torch_outputs(name, [image], 5, [1])[0]
    mad = np.abs(get_corruption(name)(image, 5, 0).astype(np.float64) - out).mean()
    assert mad <= DETERMINISTIC[name], f"{name}: mean abs diff {mad:.4f}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", [60, 12, 3])
def test_poisson_inverse_cdf_matches_brute_force_count(c, dtype):
    """The guide table (settled bins read directly, unsettled ones stepped) gives #{k : CDF_k <= u} exactly,
    including uniforms on and just below the tabulated CDF values and at the ends of [0, 1), in float64 and in
    float32 (shot_noise's uniforms)."""
    from robustbench_sympie.corruptions.torch_backend import noise as tnoise

    cdf, _, kmax, _ = tnoise._poisson_tables(c, "cpu")
    cdf = cdf.view(256, kmax)
    gen = torch.Generator().manual_seed(c)
    level = torch.randint(0, 256, (20000,), generator=gen)
    on_step = cdf[level, torch.randint(0, kmax, (20000,), generator=gen)].clamp(max=1 - 2.0**-53)
    u = torch.cat([torch.rand(20000, dtype=torch.float64, generator=gen), on_step,
                   torch.nextafter(on_step, torch.zeros_like(on_step)),
                   torch.tensor([0.0, 1 - 2.0**-53], dtype=torch.float64).repeat(10000)])
    level = torch.cat([level, level, level, level])
    if dtype == torch.float32:  # the float32 values nearest the steps, and the float32 ones on either side
        step32 = on_step.float().clamp(max=1 - 2.0**-24)
        u = torch.cat([torch.nextafter(step32, torch.ones(1)).clamp(max=1 - 2.0**-24), step32,
                       torch.nextafter(step32, torch.zeros(1)), torch.tensor([0.0, 1 - 2.0**-24]).repeat(10000),
                       u[:20000].float().clamp(max=1 - 2.0**-24)])
        level = torch.cat([level, level[:20000]])
    assert u.dtype == dtype
    expected = (cdf[level] <= u.double()[:, None]).sum(1)
    assert torch.equal(tnoise.poisson_from_uniform(level, u, c).long(), expected)


def test_randint_int32_blocks_hold_the_int64_numbers():
    """int32 draws must be the int64 stream's numbers (torch's 32-bit draw): a corruption's numbers must not depend
    on the integer type it keeps them in."""
    seeds = torch.tensor([3, 2**40 + 7, 12345678901])
    for low, high in ((-1, 1), (-4, 4), (0, 255)):
        wide = rng.randint(seeds, low, high, (2, 5000), stream=2)
        narrow = rng.randint(seeds, low, high, (2, 5000), stream=2, dtype=torch.int32)
        assert narrow.dtype == torch.int32
        assert torch.equal(wide, narrow.long())


@pytest.mark.parametrize("name", sorted(n for n, c in tb.TORCH_CORRUPTIONS.items() if c.cpu_image_fn is not None))
@pytest.mark.parametrize("severity", [1, 5])
def test_batched_path_of_per_image_cpu_corruptions_matches_it(name, severity, crops):
    """Corruptions that call a C library per image on the CPU keep a batched tensor path for other devices: on
    CPU tensors the two give (near-)identical pixels, so a GPU run measures the same corruption."""
    corruption = tb.get_torch_corruption(name)
    assert corruption.cpu_image_fn is not None
    batch = _batch(crops)
    per_image = corruption(batch, severity, torch.zeros(len(crops), dtype=torch.int64))
    batched = corruption.fn(batch.float(), severity, torch.zeros(len(crops), dtype=torch.int64))
    batched = batched.clamp(0, 255).to(torch.uint8)
    mad = (per_image.double() - batched.double()).abs().mean().item()
    assert mad <= DETERMINISTIC[name], f"{name} s{severity}: batched vs per-image mean abs diff {mad:.4f}"
    assert not torch.equal(per_image, batch)  # the corruption did something


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_cpu_jpeg_gives_pillows_pixels(severity, crops):
    """jpeg_compression runs libjpeg through torchvision (on the CPU too): with this project's torchvision and
    Pillow wheels its pixels are the reference's (Pillow's save/open) exactly. A failure here means the two
    libraries' libjpeg builds differ, which the corruption's note allows but the fidelity table does not show."""
    batch = _batch(crops)
    out = tb.get_torch_corruption("jpeg_compression")(batch, severity, torch.zeros(len(crops), dtype=torch.int64))
    reference = get_corruption("jpeg_compression")
    for image, got in zip(crops, out.permute(0, 2, 3, 1).numpy(), strict=True):
        assert np.array_equal(got, reference(image, severity, 0))


def test_pool_threads_run_torch_single_threaded_and_leave_the_caller_alone():
    """The corruption pools' threads run torch on one thread each, set once when the pool starts (no per-call
    switching, which clears oneDNN's cache), and the caller's and new threads' counts are left as they were."""
    import threading

    from robustbench_sympie.corruptions.torch_backend.base import thread_pool

    before = torch.get_num_threads()
    pool = thread_pool(3, "test-single-threaded")
    assert set(pool.map(lambda _: torch.get_num_threads(), range(12))) == {1}
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert torch.get_num_threads() == before and seen == [before]
