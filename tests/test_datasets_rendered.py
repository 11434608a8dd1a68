"""Pre-rendered ImageNet-C: layout reader, renderer (manifest, resume, verify) and rendered == on the fly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_sympie.cli.build_dataset import main as build_main
from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.datasets.render import ENTRIES, GridSuite, render, verify
from robustbench_sympie.datasets.rendered import RenderedDataset, open_rendered
from robustbench_sympie.errors import DataError
from robustbench_sympie.imageio import Preprocess, load_rgb

SMALL = Preprocess(64, 64)
WNIDS = ("n01440764", "n01530575")


def _clean_subset(demo_root: Path, tmp_path: Path, n: int = 3) -> Path:
    source = tmp_path / "clean"
    source.mkdir()
    for path in sorted(demo_root.iterdir())[:n]:
        shutil.copy(path, source / path.name)
    return source


def _write(path: Path, value: int, size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path, quality=85)


@pytest.fixture()
def published(tmp_path: Path) -> Path:
    """A tiny published-style root: gaussian_noise 1 and 3 (2 absent), family-folder shot_noise 1, a bad JPEG."""
    root = tmp_path / "ImageNet-C"
    for severity in (1, 3):
        for wnid in WNIDS:
            _write(root / "gaussian_noise" / str(severity) / wnid / "ILSVRC2012_val_00000001.JPEG", 40 * severity)
    _write(root / "noise" / "shot_noise" / "1" / WNIDS[0] / "a.JPEG", 10)
    (root / "gaussian_noise" / "3" / WNIDS[1] / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def test_published_layout_reports_missing_cells_and_skips_corrupt_files(published: Path):
    dataset = create_dataset("imagenet-c", data_root=published, corruptions="clean,gaussian_noise,shot_noise",
                             severities=[1, 2, 3], seed=0, preprocess=Preprocess(256, 64), limit=None)
    assert isinstance(dataset, RenderedDataset)
    assert dataset.cells() == [Cell("gaussian_noise", 1), Cell("gaussian_noise", 3), Cell("shot_noise", 1)]
    assert dataset.provenance()["missing_cells"] == "clean/0,gaussian_noise/2,shot_noise/2,shot_noise/3"
    samples = [dataset.cell_dataset(Cell("gaussian_noise", 3))[i] for i in range(3)]
    errors = [s.error for s in samples if s.error]
    assert len(errors) == 1 and "broken.JPEG" in errors[0]
    good = [s for s in samples if not s.error]
    assert [s.target for s in good] == [0, 10] and good[0].image.shape == (3, 64, 64)


def test_layout_errors_name_the_folder(tmp_path: Path, published: Path):
    with pytest.raises(DataError, match="does not exist"):
        open_rendered(tmp_path / "nope", ["gaussian_noise"], [1])
    with pytest.raises(DataError, match="none of the requested"):
        open_rendered(published, ["fog"], [1])


def test_clean_folder_still_generates_on_the_fly(demo_root: Path):
    dataset = create_dataset("imagenet-c", data_root=demo_root, corruptions="clean,fog", severities=[1],
                             seed=0, preprocess=SMALL, limit=2)
    assert not isinstance(dataset, RenderedDataset) and dataset.cells() == [Cell("clean", 0), Cell("fog", 1)]


def _cell_pixels(dataset, cell: Cell) -> torch.Tensor:
    cell_data = dataset.cell_dataset(cell)
    return torch.stack([cell_data[i].image for i in range(len(cell_data))])


def test_rendered_png_equals_on_the_fly_and_runner_accuracy_matches(demo_root: Path, tmp_path: Path):
    from robustbench_sympie.runner import SuiteConfig, run_suite

    source = _clean_subset(demo_root, tmp_path)
    out = tmp_path / "rendered"
    suite = GridSuite(("clean", "gaussian_noise", "darken"), (2,), seed=7)
    report = render(suite, source, out, fmt="png", preprocess=SMALL)
    assert report.written == 3 * 3 and not report.errors and verify(out) == []

    kwargs = dict(corruptions="clean,gaussian_noise,darken", severities=[2], seed=7, preprocess=SMALL, limit=None)
    fly, disk = create_dataset("imagenet-c", data_root=source, **kwargs), create_dataset("imagenet-c", data_root=out,
                                                                                        **kwargs)
    assert isinstance(disk, RenderedDataset) and disk.cells() == fly.cells()
    for cell in fly.cells():
        assert torch.equal(_cell_pixels(fly, cell), _cell_pixels(disk, cell)), cell

    rows = {}
    for name, root in (("fly", source), ("disk", out)):
        config = SuiteConfig(enhancers=["identity"], models=["tiny_test_model"], data_root=root, seed=7,
                             corruptions="clean,gaussian_noise,darken", severities=[2], resize=64, crop=64,
                             workers=0, device="cpu", out=tmp_path / f"run-{name}", progress=False)
        rows[name] = run_suite(config).set_index(["corruption", "severity"])[["n", "top1", "top5"]].sort_index()
    assert rows["fly"].equals(rows["disk"])


def test_jpeg_render_is_close_deterministic_and_resumable(demo_root: Path, tmp_path: Path):
    source = _clean_subset(demo_root, tmp_path)
    suite = GridSuite(("contrast",), (1, 5), seed=0)
    first = render(suite, source, tmp_path / "a", preprocess=SMALL, limit=2)
    assert first.written == 4
    resumed = render(suite, source, tmp_path / "a", preprocess=SMALL)  # one more image: only it is rendered
    assert resumed.written == 2 and resumed.skipped_images == 2
    again = render(suite, source, tmp_path / "b", preprocess=SMALL, workers=2)
    hashes = [{e["file"]: e["sha256"] for e in map(json.loads, (d / ENTRIES).read_text().splitlines())}
              for d in (tmp_path / "a", tmp_path / "b")]
    assert again.written == 6 and hashes[0] == hashes[1]  # reproducible, in parallel too
    entry = json.loads((tmp_path / "a" / ENTRIES).read_text().splitlines()[0])
    assert entry["corruption"] == "contrast" and entry["seed"] > 0 and len(entry["source_sha256"]) == 64
    header = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert header["jpeg_quality"] == 85 and "numpy" in header["versions"]

    fly = create_dataset("imagenet-c", data_root=source, corruptions="contrast", severities=[5], seed=0,
                         preprocess=SMALL, limit=None)
    disk = create_dataset("imagenet-c", data_root=tmp_path / "a", corruptions="contrast", severities=[5], seed=0,
                          preprocess=SMALL, limit=None)
    diff = (_cell_pixels(fly, Cell("contrast", 5)).float() - _cell_pixels(disk, Cell("contrast", 5)).float()).abs()
    assert 0 < diff.mean() < 3  # JPEG quality 85: close, not identical

    with pytest.raises(DataError, match="rendered with settings"):
        render(GridSuite(("contrast",), (1,), seed=0), source, tmp_path / "a", preprocess=SMALL)
    moved = tmp_path / "moved"  # the same images elsewhere resume; other images are refused, not mixed in
    shutil.copytree(source, moved)
    assert render(suite, moved, tmp_path / "a", preprocess=SMALL).written == 0
    next(moved.iterdir()).unlink()
    with pytest.raises(DataError, match="rendered from other source images"):
        render(suite, moved, tmp_path / "a", preprocess=SMALL, limit=1)
    victim = next((tmp_path / "a" / "contrast" / "5").rglob("*.JPEG"))
    victim.write_bytes(victim.read_bytes()[:-10])
    assert [p for p in verify(tmp_path / "a") if "differs" in p] == [f"{victim}: content differs from the manifest"]


def test_build_dataset_cli(demo_root: Path, tmp_path: Path, capsys):
    source = _clean_subset(demo_root, tmp_path, n=1)
    out = tmp_path / "warps"
    args = ["colour-warps", "--source", str(source), "--out", str(out), "--severities", "1", "--resize", "64",
            "--crop", "64", "--workers", "1", "--no-progress", "--format", "png"]
    assert build_main(args) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["clean", "darken", "night", "sunset",
                                                                   "white_point"]
    assert build_main(["colour-warps", "--out", str(out), "--verify"]) == 0
    assert build_main(["imagenet-c", "--out", str(out)]) == 2
    assert "--source CLEAN_DIR is required" in capsys.readouterr().err
    dataset = create_dataset("colour-warps", data_root=out, corruptions="clean,benchmark", severities=[1], seed=0,
                             preprocess=SMALL, limit=None)
    assert dataset.name == "colour-warps" and len(dataset.cells()) == 5
    pixels = np.asarray(load_rgb(next((out / "darken" / "1").rglob("*.png"))))
    assert pixels.max() <= 128  # darken 1 halves every intensity


def test_a_rendered_root_is_never_scanned_as_clean_images(published: Path):
    """Requesting only corruptions the root lacks must not fall back to reading its corrupted files as clean."""
    for corruptions in ("clean", "clean,impulse_noise"):
        with pytest.raises(DataError, match="holds none of the requested"):
            create_dataset("imagenet-c", data_root=published, corruptions=corruptions, severities=[1],
                           preprocess=Preprocess(256, 64))
    partial = create_dataset("imagenet-c", data_root=published, corruptions="clean,gaussian_noise", severities=[1],
                             preprocess=Preprocess(256, 64))
    assert isinstance(partial, RenderedDataset) and partial.cells() == [Cell("gaussian_noise", 1)]
    with pytest.raises(DataError, match="rendered corruption set"):
        create_dataset("imagenet-c-mixed", data_root=published)


def test_a_torn_manifest_line_does_not_swallow_the_next_entry(demo_root: Path, tmp_path: Path):
    source, out = _clean_subset(demo_root, tmp_path, n=2), tmp_path / "out"
    args = ["imagenet-c", "--source", str(source), "--out", str(out), "--corruptions", "contrast",
            "--severities", "1", "--workers", "0", "--format", "png"]
    assert build_main(args) == 0
    lines = (out / ENTRIES).read_text().splitlines()
    (out / ENTRIES).write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # crash mid-write of entry 2
    assert build_main(args) == 0  # the image of the torn entry is rendered again and recorded on a line of its own
    after = (out / ENTRIES).read_text().splitlines()
    assert after[0] == lines[0] and json.loads(after[2]) == json.loads(lines[1])
