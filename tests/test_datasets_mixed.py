"""ImageNet-C-Mixed: sampler, determinism, on-the-fly cells, and a rendered set whose manifest matches its images."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_sympie.datasets import Cell, create_dataset
from robustbench_sympie.datasets.mixed import ChainSampler, MixedSuite, apply_chain, draw_chain
from robustbench_sympie.datasets.render import ENTRIES, render
from robustbench_sympie.datasets.rendered import RenderedDataset
from robustbench_sympie.errors import SuiteError
from robustbench_sympie.imageio import Preprocess, load_rgb

SMALL = Preprocess(64, 64)
POOL = ("gaussian_noise", "contrast", "darken", "brightness")


def test_sampler_follows_the_released_recipe_and_is_deterministic():
    chains = [draw_chain(seed, POOL, (1, 2, 3, 4, 5), 3) for seed in range(600)]
    assert chains == [draw_chain(seed, POOL, (1, 2, 3, 4, 5), 3) for seed in range(600)]
    counts = Counter(len(c) for c in chains)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 150  # 1 + randrange(3): uniform over 1..3
    steps = [step for c in chains for step in c]
    assert {c for c, _ in steps} == set(POOL) and {s for _, s in steps} == {1, 2, 3, 4, 5}
    sampler = ChainSampler(POOL, (2, 4), max_corruptions=2, seed=1)
    assert sampler.chain("a.JPEG") == ChainSampler(POOL, (2, 4), 2, 1).chain("a.JPEG")
    assert {s for i in range(50) for _, s in sampler.chain(f"{i}.JPEG")} == {2, 4}


def test_sampler_parameters_that_cannot_draw_name_their_flag():
    for kwargs, message in ((dict(pool=()), "--corruptions other than clean"),
                            (dict(pool=POOL, max_corruptions=0), "--max-corruptions must be >= 1"),
                            (dict(pool=POOL, severities=()), "--severities")):
        with pytest.raises(ValueError, match=message):
            ChainSampler(**kwargs)


def test_apply_chain_is_deterministic_and_differs_by_seed():
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    chain = (("gaussian_noise", 3), ("darken", 2))
    a, b, c = apply_chain(image, chain, 5), apply_chain(image, chain, 5), apply_chain(image, chain, 6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_on_the_fly_cells_break_results_down_by_number_of_corruptions(demo_root: Path):
    dataset = create_dataset("imagenet-c-mixed", data_root=demo_root, corruptions="clean," + ",".join(POOL),
                             severities=[1, 3, 5], seed=0, preprocess=SMALL, limit=12)
    ks = Counter(row["k"] for row in dataset.manifest())
    assert dataset.cells() == [Cell("clean", 0)] + [Cell(f"mixed_{k}", 0) for k in sorted(ks)]
    for k, n in ks.items():
        assert len(dataset.cell_dataset(Cell(f"mixed_{k}", 0))) == n
    assert sum(ks.values()) == dataset.n_images == 12
    assert dataset.provenance()["max_corruptions"] == 3


def test_an_explicit_torch_backend_is_refused_with_the_reason(demo_root: Path, tmp_path: Path):
    kwargs = dict(corruptions="clean," + ",".join(POOL), severities=[3], seed=0, preprocess=SMALL, limit=2)
    with pytest.raises(SuiteError, match="own chain of corruptions, which only the reference backend applies"):
        create_dataset("imagenet-c-mixed", data_root=demo_root, corruption_backend="torch", **kwargs)
    source = tmp_path / "clean"
    source.mkdir()
    for path in sorted(demo_root.iterdir())[:2]:
        shutil.copy(path, source / path.name)
    render(MixedSuite(ChainSampler(POOL, (3,), 3, 0), include_clean=True), source, tmp_path / "mixed", fmt="png",
           preprocess=SMALL)
    with pytest.raises(SuiteError, match="rendered ImageNet-C-Mixed set .* is read as stored"):
        create_dataset("imagenet-c-mixed", data_root=tmp_path / "mixed", corruption_backend="torch", **kwargs)


def test_rendered_mixed_manifest_matches_its_images(demo_root: Path, tmp_path: Path):
    source = tmp_path / "clean"
    source.mkdir()
    for path in sorted(demo_root.iterdir())[:4]:
        shutil.copy(path, source / path.name)
    sampler = ChainSampler(POOL, (1, 2, 3, 4, 5), max_corruptions=3, seed=3)
    report = render(MixedSuite(sampler, include_clean=True), source, tmp_path / "mixed", fmt="png", preprocess=SMALL)
    assert report.written == 8
    entries = [json.loads(line) for line in (tmp_path / "mixed" / ENTRIES).read_text().splitlines()]
    mixed = [e for e in entries if e["corruption"] != "clean"]
    assert len(mixed) == 4
    for entry in mixed:
        chain = tuple((c, s) for c, s in entry["chain"])
        assert entry["file"].startswith(f"mixed_{len(chain)}/") and chain == sampler.chain(entry["source"])
        clean = SMALL(load_rgb(source / entry["source"]))
        expected = apply_chain(clean, chain, entry["seed"])
        assert np.array_equal(np.asarray(load_rgb(tmp_path / "mixed" / entry["file"])), expected), entry["file"]

    disk = create_dataset("imagenet-c-mixed", data_root=tmp_path / "mixed", corruptions="clean,benchmark",
                          severities=[1], seed=0, preprocess=SMALL, limit=None)
    fly = create_dataset("imagenet-c-mixed", data_root=source, corruptions="clean," + ",".join(POOL),
                         severities=[1, 2, 3, 4, 5], seed=3, preprocess=SMALL, limit=None)
    assert isinstance(disk, RenderedDataset) and disk.cells() == fly.cells()
    for cell in fly.cells():
        a, b = fly.cell_dataset(cell), disk.cell_dataset(cell)
        assert torch.equal(torch.stack([a[i].image for i in range(len(a))]),
                           torch.stack([b[i].image for i in range(len(b))]))


def test_limit_on_a_rendered_mixed_root_keeps_one_image_set(tmp_path):
    """--limit picks images once over all cells, so mixed_<k> cells are not re-weighted and clean matches them."""
    import numpy as np
    from PIL import Image

    from robustbench_sympie.datasets import Cell, create_dataset

    layout = {"clean": "abcd", "mixed_1": "ab", "mixed_2": "cd"}
    for folder, names in layout.items():
        for name in names:
            path = tmp_path / folder / "n01440764" / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    dataset = create_dataset("imagenet-c-mixed", data_root=tmp_path, limit=2)
    ids = {cell.corruption: [r.image_id for r in dataset.records(cell)] for cell in dataset.cells()}
    assert ids == {"clean": ["n01440764/a.png", "n01440764/d.png"], "mixed_1": ["n01440764/a.png"],
                   "mixed_2": ["n01440764/d.png"]}
    assert dataset.n_images == 2 and Cell("mixed_2", 0) in dataset.cells()
