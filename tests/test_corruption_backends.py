"""The torch corruption backend in the runner: batch invariance, provenance, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from robustbench_sympie.corruptions import register_corruption
from robustbench_sympie.corruptions.backends import DeviceCorruption, resolve_backend
from robustbench_sympie.datasets import Cell, collate_samples, create_dataset
from robustbench_sympie.errors import SuiteError
from robustbench_sympie.records import load_records
from robustbench_sympie.runner import SuiteConfig, run_suite


def _config(root: Path, out: Path, **overrides) -> SuiteConfig:
    settings = dict(enhancers=["identity"], models=["tiny_test_model"], data_root=root,
                    corruptions="clean,gaussian_noise,contrast", severities=[3], batch_size=4, workers=0,
                    device="cpu", out=out, progress=False, corruption_backend="torch")
    return SuiteConfig(**{**settings, **overrides})


def test_auto_backend_is_torch_on_cuda_and_reference_elsewhere():
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend("auto", torch.device("cpu")) == "reference"
    with pytest.raises(SuiteError, match="expected one of auto, reference, torch"):
        resolve_backend("gpu", torch.device("cpu"))


def test_device_corruption_pixels_do_not_depend_on_the_batch(few_images: Path):
    dataset = create_dataset("imagenet-c", data_root=few_images, corruptions="shot_noise", severities=[3],
                             corruption_backend="torch")
    cell = Cell("shot_noise", 3)
    clean = collate_samples([dataset.cell_dataset(cell)[i] for i in range(len(dataset.records))])
    corrupt = dataset.device_corruption(cell)
    assert isinstance(corrupt, DeviceCorruption)
    whole = corrupt(clean.images, clean.image_ids)
    for i in range(len(clean.image_ids)):
        alone = corrupt(clean.images[i:i + 1], clean.image_ids[i:i + 1])
        assert torch.equal(alone[0], whole[i])
    assert not torch.equal(whole, clean.images)


def test_torch_backend_results_do_not_depend_on_batch_size_or_workers(few_images: Path, tmp_path: Path):
    a = run_suite(_config(few_images, tmp_path / "a", batch_size=2))
    b = run_suite(_config(few_images, tmp_path / "b", batch_size=5, workers=1))
    key = ["corruption", "severity"]
    counts = ["n", "n_correct_top1", "n_correct_top5"]
    assert a.sort_values(key)[counts].reset_index(drop=True).equals(b.sort_values(key)[counts].reset_index(drop=True))
    ra, rb = (load_records(tmp_path / x).sort_values(["corruption", "image_id"]) for x in "ab")
    assert np.array_equal(ra[["top1", "top2", "top3"]].to_numpy(), rb[["top1", "top2", "top3"]].to_numpy())
    assert set(a["corruption_backend"]) == {"torch"}


def test_backend_is_in_provenance_and_config_hash(few_images: Path, tmp_path: Path):
    torch_rows = run_suite(_config(few_images, tmp_path / "t", corruptions="clean"))
    reference = run_suite(_config(few_images, tmp_path / "r", corruptions="clean", corruption_backend="reference"))
    assert set(reference["corruption_backend"]) == {"reference"}
    assert set(torch_rows["config_hash"]).isdisjoint(set(reference["config_hash"]))
    # clean pixels are the same with both backends
    assert torch_rows["n_correct_top1"].tolist() == reference["n_correct_top1"].tolist()
    with pytest.raises(Exception, match="config"):  # a second backend in the same --out is refused, not mixed
        run_suite(_config(few_images, tmp_path / "t", corruptions="clean", corruption_backend="reference"))


def test_corruption_without_torch_version_names_the_reference_backend(few_images: Path):
    @register_corruption("test_reference_only", family="test")
    def reference_only(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        return image

    with pytest.raises(SuiteError, match="test_reference_only have no torch implementation: use "
                                         "--corruption-backend reference"):
        create_dataset("imagenet-c", data_root=few_images, corruptions="test_reference_only",
                       corruption_backend="torch")


def test_mixed_and_rendered_sets_refuse_the_torch_backend(few_images: Path):
    with pytest.raises(SuiteError, match="ImageNet-C-Mixed"):
        create_dataset("imagenet-c-mixed", data_root=few_images, corruption_backend="torch")


def test_results_csv_records_the_backend(few_images: Path, tmp_path: Path):
    run_suite(_config(few_images, tmp_path / "x", corruptions="clean"))
    assert set(pd.read_csv(tmp_path / "x" / "results.csv")["corruption_backend"]) == {"torch"}


@pytest.fixture
def two_torch_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("two_torch_threads")
@pytest.mark.parametrize("name", ["gaussian_noise", "glass_blur", "contrast", "elastic_transform", "brightness",
                                  "fog", "snow", "motion_blur",  # chunks of their own size
                                  "jpeg_compression", "pixelate"])  # the last two: per-image library calls on threads
def test_cpu_chunks_on_threads_give_the_single_thread_pixels(name):
    """CPU batches run in chunks (of the corruption's size), one per torch thread: the pixels equal a one-thread
    run and the image alone, under inference mode too, and torch's thread count is restored afterwards."""
    from robustbench_sympie.corruptions.torch_backend import get_torch_corruption
    from robustbench_sympie.corruptions.torch_backend.base import CPU_CHUNK_PIXELS, chunk_size

    corruption = get_torch_corruption(name)
    gen = torch.Generator().manual_seed(0)
    one = torch.zeros((1, 3, 160, 160), dtype=torch.uint8)
    count = 2 * chunk_size(one, corruption.chunk_pixels or CPU_CHUNK_PIXELS) + 1  # several chunks, one partial
    images = torch.randint(0, 256, (count, 3, 160, 160), dtype=torch.uint8, generator=gen)
    seeds = torch.arange(count) * 1000 + 3
    with torch.inference_mode():
        threaded = corruption(images, 3, seeds)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    sequential = corruption(images, 3, seeds)
    torch.set_num_threads(2)
    assert torch.equal(threaded, sequential)
    assert torch.equal(threaded[5], corruption(images[5:6], 3, seeds[5:6])[0])


@pytest.mark.usefixtures("two_torch_threads")
def test_a_failing_chunk_raises_and_restores_the_thread_count():
    from robustbench_sympie.corruptions.torch_backend.base import TorchCorruption, corrupt_batch

    def fails_on_the_last_image(images, severity, seeds):
        if int(seeds[-1]) == 6:
            raise RuntimeError("chunk failed")
        return images

    with pytest.raises(RuntimeError, match="chunk failed"):
        corrupt_batch(TorchCorruption("fails", fails_on_the_last_image), torch.zeros(7, 3, 160, 160, dtype=torch.uint8),
                      1, torch.arange(7))
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("two_torch_threads")
@pytest.mark.parametrize(("chunk_pixels", "expected"), [(2 * 100, [2, 2, 1]), (3 * 100, [3, 2]), (None, [5])])
def test_cpu_chunks_follow_the_corruptions_chunk_pixels(chunk_pixels, expected):
    """A corruption's own ``chunk_pixels`` sets the images per CPU chunk (None: the whole batch at once)."""
    from robustbench_sympie.corruptions.torch_backend.base import TorchCorruption, corrupt_batch

    seen: list[int] = []

    def records_chunks(images, severity, seeds):
        seen.append(images.shape[0])
        return images + 1

    out = corrupt_batch(TorchCorruption("rec", records_chunks, chunk_pixels=chunk_pixels),
                        torch.zeros(5, 3, 10, 10, dtype=torch.uint8), 1, torch.arange(5))
    assert sorted(seen, reverse=True) == expected
    assert torch.equal(out, torch.ones(5, 3, 10, 10, dtype=torch.uint8))


@pytest.mark.parametrize("chunk_pixels", [0, -4, 2.5, True])
def test_chunk_pixels_must_be_a_positive_int(chunk_pixels):
    from robustbench_sympie.corruptions.torch_backend.base import TorchCorruption

    with pytest.raises(ValueError, match="chunk_pixels of torch corruption 'odd'"):
        TorchCorruption("odd", lambda images, severity, seeds: images, chunk_pixels=chunk_pixels)


@pytest.mark.usefixtures("two_torch_threads")
def test_uint8_io_corruptions_take_and_return_uint8_in_chunks():
    """``uint8_io``: the function gets the uint8 pixels (no float round trip), in CPU chunks like any other, and a
    result of another dtype is an error that says what was expected."""
    from robustbench_sympie.corruptions.torch_backend.base import TorchCorruption, corrupt_batch

    seen: list[torch.dtype] = []

    def inverts(images, severity, seeds):
        seen.append(images.dtype)
        return 255 - images

    images = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8)
    out = corrupt_batch(TorchCorruption("inv", inverts, chunk_pixels=2 * 144, uint8_io=True), images, 1,
                        torch.arange(5))
    assert torch.equal(out, 255 - images) and seen == [torch.uint8] * 3

    with pytest.raises(RuntimeError, match="must return uint8 on cpu, returned torch.float32"):
        corrupt_batch(TorchCorruption("floats", lambda images, severity, seeds: images.float(), uint8_io=True),
                      images, 1, torch.arange(5))


@pytest.mark.parametrize("name", ["gaussian_noise", "jpeg_compression", "pixelate", "fog"])
def test_an_empty_batch_gives_an_empty_batch(name):
    from robustbench_sympie.corruptions.torch_backend import get_torch_corruption

    empty = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    out = get_torch_corruption(name)(empty, 2, torch.zeros(0, dtype=torch.int64))
    assert out.shape == empty.shape and out.dtype == torch.uint8


def test_a_per_image_cpu_function_that_changes_the_shape_is_an_error():
    import numpy as np

    from robustbench_sympie.corruptions.torch_backend.base import TorchCorruption, corrupt_batch

    def crops(images, severity, seeds):
        return images

    def crop_one(image, severity):
        return np.ascontiguousarray(image[1:])

    with pytest.raises(RuntimeError, match="changed an image's shape"):
        corrupt_batch(TorchCorruption("crops", crops, cpu_image_fn=crop_one),
                      torch.zeros(2, 3, 40, 40, dtype=torch.uint8), 1, torch.arange(2))
