"""Decoding JPEG bytes on the evaluation device (``--decode device``): pixels, odd files, runner, provenance."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustbench_sympie.corruptions.backends import resolve_backend
from robustbench_sympie.datasets import Cell, collate_samples, create_dataset
from robustbench_sympie.device_decode import DeviceDecoder, read_jpeg_bytes, resolve_decode
from robustbench_sympie.errors import SuiteError
from robustbench_sympie.imageio import FitToCrop, Preprocess, load_rgb
from robustbench_sympie.provenance import config_hash
from robustbench_sympie.runner import HASHED_UNLESS, SuiteConfig, run_suite

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _pil_pixels(paths: list[Path], geometry) -> torch.Tensor:
    return torch.stack([torch.from_numpy(geometry(load_rgb(p))).permute(2, 0, 1) for p in paths])


def _decode(paths: list[Path], geometry, device: str = "cpu"):
    decoder = DeviceDecoder(geometry, torch.device(device))
    return decoder([read_jpeg_bytes(p) for p in paths], [str(p) for p in paths])


def test_resolve_decode():
    assert resolve_decode("auto", torch.device("cuda")) == "device"
    assert resolve_decode("auto", torch.device("cpu")) == "workers"
    assert resolve_decode("device", torch.device("cpu")) == "device"
    assert resolve_decode("auto", torch.device("cuda"), "reference") == "workers"  # Pillow's pixels throughout
    with pytest.raises(SuiteError, match="--decode 'gpu': expected one of auto, workers, device"):
        resolve_decode("gpu", torch.device("cpu"))


@pytest.mark.parametrize("geometry", [Preprocess(256, 224), Preprocess(80, 64), FitToCrop(224)],
                         ids=["imagenet", "small", "fit-to-crop"])
def test_decoded_pixels_match_the_workers(demo_root: Path, geometry):
    paths = sorted(demo_root.glob("*.JPEG"))[:12]
    images, kept, errors = _decode(paths, geometry)
    reference = _pil_pixels(paths, geometry)
    assert kept == list(range(len(paths))) and errors == []
    assert images.shape == reference.shape and images.dtype == torch.uint8
    difference = (images.int() - reference.int()).abs()
    assert difference.float().mean() < 0.05  # libjpeg both ways; only the resize's rounding differs
    assert difference.max() <= 2


def _odd_files(root: Path, demo_root: Path) -> dict[str, Path]:
    """A JPEG, a grey-scale JPEG, a CMYK JPEG, a PNG and a truncated JPEG."""
    root.mkdir(parents=True, exist_ok=True)
    first, second = sorted(demo_root.glob("*.JPEG"))[:2]
    files = {"rgb": root / first.name}
    shutil.copy(first, files["rgb"])
    image = load_rgb(second)
    files["grey"] = root / ("grey_" + second.name)
    image.convert("L").save(files["grey"], quality=90)
    files["cmyk"] = root / "cmyk.JPEG"
    image.convert("CMYK").save(files["cmyk"], quality=90)
    files["png"] = root / "picture.png"
    image.save(files["png"])
    files["broken"] = root / "broken.JPEG"
    files["broken"].write_bytes(first.read_bytes()[:600])
    return files


def test_odd_files_decode_or_are_reported_by_name(tmp_path: Path, demo_root: Path):
    files = _odd_files(tmp_path, demo_root)
    assert read_jpeg_bytes(files["png"]) is None  # not a JPEG: decoded by the worker
    geometry = Preprocess(72, 64)
    order = ["rgb", "grey", "cmyk", "png", "broken"]
    items = [read_jpeg_bytes(files[k]) if k != "png" else
             torch.from_numpy(geometry(load_rgb(files[k]))).permute(2, 0, 1) for k in order]
    images, kept, errors = DeviceDecoder(geometry, torch.device("cpu"))(items, [str(files[k]) for k in order])
    assert kept == [0, 1, 2, 3]
    assert len(errors) == 1 and errors[0].startswith(str(files["broken"]) + ": ")
    reference = _pil_pixels([files[k] for k in order[:4]], geometry)
    difference = (images.int() - reference.int()).abs().amax(dim=(1, 2, 3))
    assert difference[0] <= 2 and difference[1] <= 2  # RGB and grey-scale JPEGs
    assert difference[2] <= 2  # CMYK: decoded by Pillow after torchvision refused it, or by torchvision
    assert difference[3] == 0  # the worker's pixels pass through untouched


def test_workers_ship_bytes_only_where_the_pixels_need_no_corruption(few_images: Path):
    dataset = create_dataset("imagenet-c", data_root=few_images, corruptions="clean,gaussian_noise",
                             severities=[3])
    clean, noisy = dataset.cell_dataset(Cell("clean", 0)), dataset.cell_dataset(Cell("gaussian_noise", 3))
    clean.ship_encoded = noisy.ship_encoded = True
    assert clean[0].image.dim() == 1 and clean[0].source.endswith(".JPEG")
    assert noisy[0].image.dim() == 3  # the reference backend corrupts in the worker: decoded there
    batch = collate_samples([clean[i] for i in range(3)])
    assert isinstance(batch.images, list) and len(batch.sources) == 3


def _config(root: Path, out: Path, **overrides) -> SuiteConfig:
    settings = dict(enhancers=["identity"], models=["tiny_test_model"], data_root=root,
                    corruptions="clean,contrast,gaussian_noise", severities=[3], batch_size=4, workers=0,
                    device="cpu", out=out, progress=False, corruption_backend="torch")
    return SuiteConfig(**{**settings, **overrides})


def test_runner_decodes_on_the_device_with_the_same_results(few_images: Path, tmp_path: Path):
    shutil.copy(next(few_images.iterdir()), few_images / "n01440764_broken.JPEG")
    (few_images / "n01440764_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    workers = run_suite(_config(few_images, tmp_path / "w", decode="workers"))
    device = run_suite(_config(few_images, tmp_path / "d", decode="device", workers=1))
    key = ["corruption", "severity"]
    workers, device = workers.sort_values(key).reset_index(drop=True), device.sort_values(key).reset_index(drop=True)
    assert set(workers["decode"]) == {"workers"} and set(device["decode"]) == {"device"}
    assert workers["n"].tolist() == device["n"].tolist() == [6, 6, 6]
    assert workers["n_skipped"].tolist() == device["n_skipped"].tolist() == [1, 1, 1]
    assert (workers["n_correct_top1"] - device["n_correct_top1"]).abs().max() <= 1  # pixels differ by rounding
    assert set(workers["config_hash"]).isdisjoint(set(device["config_hash"]))
    skipped = (tmp_path / "d" / "skipped.log").read_text()
    assert skipped.count("n01440764_broken.JPEG") == 3


def test_default_decode_keeps_earlier_configuration_hashes():
    settings = {"dataset": "imagenet-c", "seed": 0, "corruption_backend": "reference"}
    with_default = {**settings, "decode": "workers"}
    kept = {k: v for k, v in with_default.items() if HASHED_UNLESS.get(k, object()) != v}
    assert config_hash(kept) == config_hash(settings)
    assert HASHED_UNLESS == {"decode": "workers"}


def test_auto_backend_on_cuda_reads_stored_sets_as_stored(tmp_path: Path):
    """``auto`` picks torch on CUDA; a stored set then reads as stored (an explicit torch is still refused)."""
    root = tmp_path / "rendered" / "gaussian_noise" / "3" / "n01440764"
    root.mkdir(parents=True)
    Image.fromarray(np.full((224, 224, 3), 90, np.uint8)).save(root / "a.JPEG")
    auto = resolve_backend("auto", torch.device("cuda"))
    dataset = create_dataset("imagenet-c", data_root=tmp_path / "rendered", corruptions="gaussian_noise",
                             severities=[3], corruption_backend=auto)
    assert dataset.cells() == [Cell("gaussian_noise", 3)]
    with pytest.raises(SuiteError, match="read as stored"):
        create_dataset("imagenet-c", data_root=tmp_path / "rendered", corruptions="gaussian_noise",
                       severities=[3], corruption_backend="torch")


def test_runner_decodes_rendered_sets_on_the_device(tmp_path: Path):
    root = tmp_path / "rendered" / "gaussian_noise" / "3" / "n01440764"
    root.mkdir(parents=True)
    for value in (30, 90, 200):
        Image.fromarray(np.full((230, 240, 3), value, np.uint8)).save(root / f"{value}.JPEG", quality=90)
    rows = [run_suite(SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], data_root=tmp_path / "rendered",
                                  corruptions="gaussian_noise", severities=[3], batch_size=2, workers=0, device="cpu",
                                  out=tmp_path / decode, progress=False, corruption_backend="reference",
                                  decode=decode))
            for decode in ("workers", "device")]
    columns = ["n", "n_correct_top1", "n_correct_top5"]
    assert rows[0][columns].equals(rows[1][columns])


@pytest.mark.gpu
@CUDA
def test_nvjpeg_pixels_are_close_to_pillow(shared_sample: Path):
    paths = sorted(shared_sample.glob("*.JPEG"))[:64]
    images, kept, errors = _decode(paths, Preprocess(), "cuda")
    assert images.device.type == "cuda" and kept == list(range(64)) and errors == []
    difference = (images.cpu().int() - _pil_pixels(paths, Preprocess()).int()).abs().float()
    assert difference.mean() < 1.5  # nvJPEG's IDCT and upsampling differ from libjpeg's by a grey level or so


@pytest.mark.gpu
@CUDA
def test_odd_files_on_cuda(tmp_path: Path, demo_root: Path):
    files = _odd_files(tmp_path, demo_root)
    order = ["rgb", "grey", "cmyk", "broken"]
    images, kept, errors = _decode([files[k] for k in order], Preprocess(72, 64), "cuda")
    assert kept == [0, 1, 2] and len(errors) == 1 and str(files["broken"]) in errors[0]


@pytest.mark.gpu
@CUDA
def test_runner_on_cuda_defaults_to_torch_backend_and_device_decoding(demo_root: Path, tmp_path: Path):
    rows = run_suite(SuiteConfig(enhancers=["identity"], models=["efficientnet_lite0"], data_root=demo_root,
                                 corruptions="clean,contrast,glass_blur", severities=[3], batch_size=16, workers=2,
                                 device="cuda", out=tmp_path / "cuda", progress=False))
    assert set(rows["corruption_backend"]) == {"torch"} and set(rows["decode"]) == {"device"}
    assert rows["n"].min() == len(list(demo_root.glob("*.JPEG")))
    cpu = run_suite(SuiteConfig(enhancers=["identity"], models=["efficientnet_lite0"], data_root=demo_root,
                                corruptions="clean", batch_size=16, workers=2, device="cpu", out=tmp_path / "cpu",
                                progress=False))
    clean = rows[rows["corruption"] == "clean"]
    assert abs(float(clean["top1"].iloc[0]) - float(cpu["top1"].iloc[0])) <= 0.02
    assert pd.notna(rows["images_per_second"]).all()


def test_replay_plan_and_memory_limit(monkeypatch):
    from robustbench_sympie import clean_cache

    keys = [None, "a", "a", "b", "a"]
    replays, last_use = clean_cache.replay_plan(keys, [4] * 5, 224, torch.device("cpu"))
    assert replays == [None, None, 1, None, 1] and last_use == {1: 4}
    monkeypatch.setitem(clean_cache.MEMORY_SHARE, "cpu", 0.0)
    assert clean_cache.replay_plan(keys, [4] * 5, 224, torch.device("cpu")) == ([None] * 5, {})


def test_on_the_fly_cells_decode_the_files_once_and_replay_them(few_images: Path, tmp_path: Path, monkeypatch):
    from robustbench_sympie import clean_cache, device_decode
    from robustbench_sympie.records import load_records

    reads: list[str] = []
    original = device_decode.read_jpeg_bytes
    monkeypatch.setattr(device_decode, "read_jpeg_bytes", lambda path: reads.append(str(path)) or original(path))
    cached = run_suite(_config(few_images, tmp_path / "cached", decode="device"))
    assert len(reads) == 6  # 3 cells, one decoding
    monkeypatch.setitem(clean_cache.MEMORY_SHARE, "cpu", 0.0)
    uncached = run_suite(_config(few_images, tmp_path / "uncached", decode="device"))
    assert len(reads) == 6 + 18
    columns = ["corruption", "n", "n_correct_top1", "n_correct_top5", "config_hash"]
    assert cached[columns].equals(uncached[columns])
    a, b = (load_records(tmp_path / x).sort_values(["corruption", "image_id"]).reset_index(drop=True)
            for x in ("cached", "uncached"))
    assert a[["image_id", "top1", "top2", "top3"]].equals(b[["image_id", "top1", "top2", "top3"]])


def test_worker_decoded_cells_are_decoded_once_and_replayed(few_images: Path, tmp_path: Path, monkeypatch):
    """On the CPU with the workers decoding, the torch backend's cells replay the first cell's clean crops: each
    file is decoded once per run, an unreadable one is skipped in every cell, and the results and per-image
    records equal those of a run that decodes every cell (the corruption must not write into the replayed
    batches)."""
    from robustbench_sympie import clean_cache
    from robustbench_sympie.datasets import imagenet_c
    from robustbench_sympie.records import load_records

    (few_images / "n01440764_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    loads: list[str] = []
    original = imagenet_c.CorruptedImageFolder.pixels
    monkeypatch.setattr(imagenet_c.CorruptedImageFolder, "pixels",
                        lambda self, record: loads.append(record.image_id) or original(self, record))
    settings = dict(decode="workers", corruptions="clean,contrast,gaussian_noise,jpeg_compression")
    cached = run_suite(_config(few_images, tmp_path / "cached", **settings))
    assert sorted(loads) == sorted(set(loads)) and len(loads) == 7  # 4 cells, one decoding of 7 files
    monkeypatch.setitem(clean_cache.MEMORY_SHARE, "cpu", 0.0)
    uncached = run_suite(_config(few_images, tmp_path / "uncached", **settings))
    assert len(loads) == 7 + 4 * 7
    assert set(cached["decode"]) == {"workers"} and (cached["n"] == 6).all() and (cached["n_skipped"] == 1).all()
    columns = ["corruption", "n", "n_skipped", "n_correct_top1", "n_correct_top5", "config_hash"]
    assert cached[columns].equals(uncached[columns])
    a, b = (load_records(tmp_path / x).sort_values(["corruption", "image_id"]).reset_index(drop=True)
            for x in ("cached", "uncached"))
    assert a[["corruption", "image_id", "top1", "top2", "top3"]].equals(b[["corruption", "image_id", "top1", "top2",
                                                                             "top3"]])
    with_workers = run_suite(_config(few_images, tmp_path / "workers", workers=2, **settings))
    assert with_workers[columns].equals(cached[columns])


def test_shards_with_device_decoding_add_up_to_the_whole_run(few_images: Path, tmp_path: Path):
    from robustbench_sympie.aggregate import merge_shards

    whole = run_suite(_config(few_images, tmp_path / "whole", decode="device"))
    parts = [run_suite(_config(few_images, tmp_path / f"shard{k}", decode="device", shard=(k, 2))) for k in range(2)]
    merged = merge_shards(pd.concat(parts, ignore_index=True))
    columns = ["corruption", "n", "n_correct_top1", "n_correct_top5"]
    key = ["corruption"]
    assert merged.sort_values(key)[columns].reset_index(drop=True).equals(
        whole.sort_values(key)[columns].reset_index(drop=True))


def test_reference_cells_are_never_replayed_from_another_cell(few_images: Path, tmp_path: Path):
    """With the reference backend only the clean cell decodes on the device; every corrupted cell keeps its own
    worker-made pixels (none may replay another cell's)."""
    from robustbench_sympie.records import load_records

    settings = dict(corruption_backend="reference", corruptions="clean,gaussian_noise,fog,contrast")
    workers = run_suite(_config(few_images, tmp_path / "w", decode="workers", **settings))
    device = run_suite(_config(few_images, tmp_path / "d", decode="device", **settings))
    assert set(device["decode"]) == {"device"}
    corrupted = lambda frame: frame[frame["corruption"] != "clean"].sort_values("corruption").reset_index(drop=True)  # noqa: E731
    columns = ["corruption", "n", "n_correct_top1", "n_correct_top5"]
    assert corrupted(workers)[columns].equals(corrupted(device)[columns])
    a, b = (corrupted(load_records(tmp_path / x)).sort_values(["corruption", "image_id"]).reset_index(drop=True)
            for x in ("w", "d"))
    assert a[["corruption", "image_id", "top1", "top2", "top3", "top4", "top5"]].equals(
        b[["corruption", "image_id", "top1", "top2", "top3", "top4", "top5"]])
    # nothing to decode on the device: the rows say so (and keep the workers' configuration hash)
    only_corrupted = run_suite(_config(few_images, tmp_path / "c", decode="device", corruption_backend="reference",
                                       corruptions="fog"))
    assert set(only_corrupted["decode"]) == {"workers"}
