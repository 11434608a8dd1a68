"""Torch weather corruptions, colour warps and ImageNet-C-Bar against their numpy references.

On three demo images at 96 x 96: (1) given the reference's own random draws, the torch pipelines reproduce
the reference pixels (mean absolute difference under measured bounds); (2) with torch's own draws, the mean
PSNR vs the clean image stays within a measured gap of the reference's; (3) a sample's pixels do not depend
on its batch or position; (4) uint8 output of the input's shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("imagecorruptions")

import robustbench_sympie.corruptions.torch_backend.blur as BL  # noqa: E402
import robustbench_sympie.corruptions.torch_backend.cbar as CB  # noqa: E402
import robustbench_sympie.corruptions.torch_backend.colour_warps as CW  # noqa: E402
import robustbench_sympie.corruptions.torch_backend.weather as W  # noqa: E402
from robustbench_sympie.corruptions import get_corruption, sample_seed  # noqa: E402
from robustbench_sympie.corruptions.torch_backend import base  # noqa: E402
from robustbench_sympie.imageio import Preprocess, load_rgb  # noqa: E402

SIZE = 96
SEVERITIES = (1, 3, 5)
DEMO = Path(__file__).resolve().parents[1] / "robustbench_sympie" / "data" / "demo"

WEATHER = ("snow", "frost", "fog", "spatter")
WARPS = ("darken", "sunset", "night", "white_point")
CBAR = tuple(name for name in ("blue_noise_sample", "brownish_noise", "caustic_refraction", "checkerboard_cutout",
                               "cocentric_sine_waves", "inverse_sparkles", "perlin_noise", "plasma_noise",
                               "single_frequency_greyscale", "sparkles") if name in base.TORCH_CORRUPTIONS)
RANDOM = WEATHER + WARPS[1:] + CBAR

#: |PSNR(torch) - PSNR(reference)| in dB (MSE pooled over 3 images x 4 run seeds at 96 x 96), the worst of
#: severities 1, 3, 5 as measured [in brackets], plus margin; frost draws one of six frost images, hence its spread
PSNR_GAP_DB = {"snow": 0.5,  # [0.12]
               "frost": 3.5,  # [2.61]
               "fog": 1.5,  # [0.87]
               "spatter": 1.5,  # [0.71]
               "sunset": 1.0,  # [0.49]
               "night": 0.3,  # [0.03]
               "white_point": 1.0,  # [0.49]
               "blue_noise_sample": 0.5,  # [0.17]
               "brownish_noise": 1.5,  # [0.73]
               "caustic_refraction": 1.0,  # [0.44]
               "checkerboard_cutout": 2.5,  # [1.38]
               "cocentric_sine_waves": 0.3,  # [0.01]
               "inverse_sparkles": 0.5,  # [0.15]
               "perlin_noise": 0.5,  # [0.15]
               "plasma_noise": 1.0,  # [0.46]
               "single_frequency_greyscale": 0.3,  # [0.00]
               "sparkles": 0.5}  # [0.13]
N_RUN_SEEDS = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: one thread avoids contention


@pytest.fixture(scope="module")
def images() -> list[tuple[str, np.ndarray]]:
    paths = sorted(DEMO.glob("*.JPEG"))[:3]
    return [(p.name, Preprocess(SIZE, SIZE)(load_rgb(p))) for p in paths]


def _batch(arrays) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _mean_abs(ref: list[np.ndarray], out: torch.Tensor) -> float:
    out = out.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(np.float64)
    return float(np.abs(np.stack(ref).astype(np.float64) - out).mean())


def _psnr(corrupted: list[np.ndarray], clean: list[np.ndarray]) -> float:
    """PSNR of the MSE pooled over all samples (a mean of per-image PSNRs is dominated by near-clean samples)."""
    mse = np.mean((np.stack(corrupted).astype(np.float64) - np.stack(clean).astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


# -- (1) exact given the reference's draws ---------------------------------------------------------------------------


def _reference_with_draws(name: str, image: np.ndarray, severity: int, seed: int):
    """The reference output under numpy seed ``seed`` and the draws it made (re-drawn from the same seed)."""
    import imagecorruptions.corruptions as ic
    from PIL import Image

    np.random.seed(seed)
    ref = np.uint8(getattr(ic, name)(Image.fromarray(image), severity))
    np.random.seed(seed)
    h, w = image.shape[:2]
    if name == "snow":
        c = W._SNOW[severity - 1]
        noise = (np.random.normal(size=(h, w), loc=c[0], scale=c[1]) - c[0]) / c[1]
        return ref, (torch.tensor(noise, dtype=torch.float32), torch.tensor(np.random.uniform(-135, -45)))
    if name == "spatter":
        c = W._SPATTER[severity - 1]
        noise = (np.random.normal(size=(h, w), loc=c[0], scale=c[1]) - c[0]) / c[1]
        return ref, (torch.tensor(noise, dtype=torch.float32),)
    if name == "fog":
        plasma = ic.plasma_fractal(mapsize=W.next_power_of_2(max(h, w, 3)), wibbledecay=W._FOG[severity - 1][1])
        return ref, (torch.tensor(plasma),)
    if name == "frost":
        _, sizes = W._frost_bank("cpu", h, w)
        index = np.random.randint(6)
        fh, fw = sizes[index].tolist()
        top, left = np.random.randint(0, fh - h), np.random.randint(0, fw - w)
        return ref, (torch.tensor(index), torch.tensor(top), torch.tensor(left))
    raise KeyError(name)


#: measured mean abs difference given the draws (0.000 for all but frost, 0.017 at 96 and 224 px), plus margin
EXACT_BOUND = {"snow": 0.05, "frost": 0.1, "fog": 0.05, "spatter": 0.05}
FROM = {"snow": W.snow_from, "frost": W.frost_from, "fog": W.fog_from, "spatter": W.spatter_from}


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", WEATHER)
def test_weather_matches_reference_given_its_draws(images, name: str, severity: int) -> None:
    refs, draws = [], []
    for k, (_, image) in enumerate(images):
        ref, drawn = _reference_with_draws(name, image, severity, seed=1000 + k)
        refs.append(ref)
        draws.append(drawn)
    stacked = [torch.stack([d[i] for d in draws]) for i in range(len(draws[0]))]
    out = FROM[name](_batch([im for _, im in images]).float(), severity, *stacked)
    assert _mean_abs(refs, out) < EXACT_BOUND[name]


@pytest.mark.parametrize("wibbledecay", [1.4, 2.0, 3.0])
def test_plasma_fractal_is_the_reference_recurrence_given_its_uniforms(monkeypatch, wibbledecay: float) -> None:
    """Fed the same uniforms, the batched diamond-square (compact grids, interleaved per level) gives the
    reference's strided in-place map, sample by sample, to float32 rounding (the sums' order differs)."""
    import imagecorruptions.corruptions as ic

    seeds, mapsize = torch.tensor([11, 12, 13]), 64
    ours = W.plasma_fractal(seeds, mapsize, wibbledecay, "cpu")
    uniforms = W.rng.uniform(seeds, (3 * sum(4 ** level for level in range(6)),), stream=0).double().numpy()
    for sample, drawn in enumerate(uniforms):
        consumed = 0

        def uniform(low, high, size, drawn=drawn):  # numpy's uniform(low, high) from our [0, 1) numbers
            nonlocal consumed
            u = drawn[consumed:consumed + int(np.prod(size))].reshape(size)
            consumed += u.size
            return low + (high - low) * u

        monkeypatch.setattr(ic.np.random, "uniform", uniform)
        reference = ic.plasma_fractal(mapsize=mapsize, wibbledecay=wibbledecay)
        assert consumed == drawn.size
        np.testing.assert_allclose(ours[sample].numpy(), reference, atol=2e-5)


def test_motion_blur_layer_sums_alike_on_cpu_views_and_cuda_gathers() -> None:
    """The two weighted sums of motion_blur_layer (shifted views on the CPU, flat gathers on CUDA) agree to
    float32 rounding, and with the sum written out."""
    gen = torch.Generator().manual_seed(3)
    padded = torch.rand(3, 1, 40, 50, generator=gen)
    weights = torch.rand(3, 9, generator=gen)
    tops, lefts = torch.randint(0, 11, (3, 9), generator=gen), torch.randint(0, 11, (3, 9), generator=gen)
    views = BL.shifted_view_sum(padded, weights, tops, lefts, 30, 40)
    torch.testing.assert_close(views, BL.gathered_sum(padded, weights, tops, lefts, 30, 40), rtol=0, atol=1e-5)
    expected = sum(weights[1, t] * padded[1, :, tops[1, t]:tops[1, t] + 30, lefts[1, t]:lefts[1, t] + 40]
                   for t in range(9))
    torch.testing.assert_close(views[1], expected, rtol=0, atol=1e-5)


def test_spatter_steps_match_cv2() -> None:
    """cv2.Canny exactly; cv2.distanceTransform(L2, 5), truncated at 20, to 1e-3 by the relaxations."""
    cv2 = pytest.importorskip("cv2")
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(3, 1, SIZE, SIZE, generator=gen)
    level = torch.trunc(W._skimage_gaussian(0.65 + 0.3 * noise, 3).clamp(0, 1) * 255)
    level = torch.where(level < 0.68 * 255, torch.zeros_like(level), level)
    edges = W.canny(level, 50, 150)
    expected = np.stack([cv2.Canny(x.astype(np.uint8), 50, 150) > 0 for x in level[:, 0].numpy()])
    assert np.array_equal(edges[:, 0].numpy(), expected)
    ref = np.stack([cv2.distanceTransform(np.where(m, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
                    for m in edges[:, 0].numpy()])
    np.testing.assert_allclose(W.chamfer_distance_relax(edges)[:, 0].numpy(), np.minimum(ref, 20), atol=1e-3)


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", WARPS)
def test_colour_warps_match_reference_given_its_draws(images, name: str, severity: int) -> None:
    refs, drawn = [], []
    for image_id, image in images:
        seed = sample_seed(image_id, name, severity, 0)
        refs.append(get_corruption(name)(image, severity, seed))
        gen = np.random.default_rng(seed)  # the reference's draws, in its order
        ranges = {"darken": None, "sunset": (-32, 33, None), "night": (-24, 25, None), "white_point": (-32, 33, 3)}
        drawn.append(0 if ranges[name] is None else gen.integers(*ranges[name][:2], size=ranges[name][2]))
    batch = _batch([im for _, im in images]).float()
    if name == "darken":
        out = CW.darken(batch, severity, torch.zeros(len(images), dtype=torch.int64))
    else:
        out = getattr(CW, f"{name}_from")(batch, severity, torch.tensor(np.array(drawn)))
    assert _mean_abs(refs, out) < 0.01  # measured <= 0.0005 (contract: < 0.5)


def _cbar_draws(name: str, gen: np.random.Generator, h: int, w: int) -> tuple:
    """The reference's draws for C-Bar corruption ``name``, in its order, as the ``*_from`` arguments."""
    side = float(np.sqrt(h * w))
    t = torch.tensor
    if name == "blue_noise_sample":
        return (t(gen.uniform(0.0, 2 * np.pi, size=(1, h, w))),)
    if name == "brownish_noise":
        return (t(gen.uniform(0.0, 2 * np.pi, size=(3, h, w))),)
    if name == "single_frequency_greyscale":
        magnitude = gen.uniform(-np.pi, np.pi)
        other = gen.uniform(-abs(magnitude), abs(magnitude))
        fx, fy = gen.permutation(np.array([magnitude, other]))
        return t(fx), t(fy), t(gen.uniform(0.0, 2 * np.pi))
    if name == "cocentric_sine_waves":
        x0, y0 = gen.uniform(0.0, 1.0, size=2) * (w, h)
        freq, amplitude = gen.uniform(0.0, 10.0), gen.uniform(0.0, side / 10)
        return t(x0), t(y0), t(freq), t(amplitude), t(max(gen.uniform(0.0, side / 10), 1e-6))
    if name == "plasma_noise":
        time, iterations = gen.uniform(0.0, 6 * np.pi), int(gen.integers(4, 7))
        return t(time), t(iterations), t(gen.uniform(0.5, 1.0)), t(gen.uniform(0.075, 0.2) * side)
    if name == "perlin_noise":
        perm = gen.permutation(256)
        return t(perm), t(gen.integers(-256, 256, size=(256, 2)))
    if name == "sparkles":
        centres = gen.uniform(0.0, 1.0, size=(5, 2)) * (h, w)
        rays = gen.integers(50, 200, size=5)
        normals = np.zeros((5, 199))
        for k, r in enumerate(rays):
            normals[k, :r] = gen.standard_normal(int(r))
        return t(centres), t(rays), t(normals)
    if name == "inverse_sparkles":
        centre = gen.uniform(0.25, 0.75, size=2) * (h, w)
        rays = int(gen.integers(50, 200))
        normals = np.zeros(199)
        normals[:rays] = gen.standard_normal(rays)
        return t(centre), t(rays), t(normals)
    if name == "checkerboard_cutout":
        angle = gen.uniform(0.0, 2 * np.pi)
        scale = max(gen.uniform(0.1, 0.25) * side, 1.0)
        cells = int(4 * max(h, w) // scale)
        m = CB._max_cells(h, w)
        uniforms = np.ones((m, m))
        uniforms[:cells, :cells] = gen.random((cells, cells))
        return t(angle), t(scale), t(uniforms)
    if name == "caustic_refraction":
        time = gen.uniform(0.5, 2.0)
        return t(time), t(gen.uniform(0.75, 1.25) * side)
    raise KeyError(name)


#: measured mean abs difference given the reference's draws: <= 0.0022 (cocentric_sine_waves at 224 px), else 0.000
CBAR_EXACT_BOUND = 0.01


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", CBAR)
def test_cbar_matches_reference_given_its_draws(images, name: str, severity: int) -> None:
    refs, draws = [], []
    for image_id, image in images:
        seed = sample_seed(image_id, name, severity, 0)
        refs.append(get_corruption(name)(image, severity, seed))
        draws.append(_cbar_draws(name, np.random.default_rng(seed), *image.shape[:2]))
    stacked = [torch.stack([d[i] for d in draws]) for i in range(len(draws[0]))]
    out = getattr(CB, f"{name}_from")(_batch([im for _, im in images]).double(), severity, *stacked)
    assert _mean_abs(refs, out) < CBAR_EXACT_BOUND


# -- (2) same distribution with torch's draws --------------------------------------------------------------------------


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", RANDOM)
def test_psnr_matches_reference(images, name: str, severity: int) -> None:
    clean, ref, out = [], [], []
    batch = _batch([im for _, im in images])
    for run_seed in range(N_RUN_SEEDS):
        seeds = [sample_seed(image_id, name, severity, run_seed) for image_id, _ in images]
        ref += [get_corruption(name)(im, severity, s) for (_, im), s in zip(images, seeds, strict=True)]
        torch_out = base.corrupt_batch(base.TORCH_CORRUPTIONS[name], batch, severity, torch.tensor(seeds))
        out += list(torch_out.permute(0, 2, 3, 1).numpy())
        clean += [im for _, im in images]
    psnr_ref, psnr_torch = _psnr(ref, clean), _psnr(out, clean)
    assert abs(psnr_torch - psnr_ref) < PSNR_GAP_DB[name], (psnr_torch, psnr_ref)





# -- (3) batch invariance, (4) dtype and shape -------------------------------------------------------------------------


@pytest.mark.parametrize("name", WEATHER + WARPS + CBAR)
def test_batch_invariance_and_output(images, name: str) -> None:
    batch = _batch([im for _, im in images])
    seeds = torch.tensor([sample_seed(image_id, name, 3, 0) for image_id, _ in images])
    corruption = base.TORCH_CORRUPTIONS[name]
    out = corruption(batch, 3, seeds)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    alone = corruption(batch[1:2], 3, seeds[1:2])
    order = torch.tensor([2, 1, 0])
    reordered = corruption(batch[order], 3, seeds[order])
    assert torch.equal(alone[0], out[1])
    assert torch.equal(reordered[1], out[1])
    assert torch.equal(reordered[0], out[2])
