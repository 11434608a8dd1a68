"""ImageNet-C-Mixed: several ImageNet-C corruptions applied in sequence to the same image.

The benchmark proposed with SyMPIE (Barbato et al., MMSys 2024, arXiv 2402.18402). Where the paper is silent
the sampler mirrors the released SyMPIE sampler (``classification/training/imagenetc.py``): an image receives
``k = 1 + randrange(max_corruptions)`` corruptions, applied one after the other, each drawn uniformly from the
pool with a severity drawn uniformly from ``severities``. Everything is a parameter; the defaults and where
they come from:

* ``pool``: the corruptions passed in (the runner's ``--corruptions``; default the 15 benchmark ImageNet-C
  corruptions, the set the paper's benchmark is built from). ``sympie_training`` gives the released training
  pool (15 + 4 extra ImageNet-C corruptions + 4 colour warps).
* ``severities``: 1..5, uniform. The released sampler draws 0..5 and skips a step drawn at 0; we draw from
  1..5 so that ``k`` is the number of corruptions actually applied.
* ``max_corruptions = 3``: our default, not taken from the paper (whose text we could not consult when this
  was written) -- check it against the paper before comparing numbers, and set it explicitly.

Determinism: the chain of an image depends only on (image id, run seed, pool, severities, max_corruptions);
step ``i`` is seeded from the chain seed, the step index, the corruption and the severity, so the chain and its
pixels are reproducible from the manifest alone (:func:`apply_chain`).

Results by number of corruptions: the grid has one cell per ``k``, named ``mixed_<k>`` with severity 0 (a cell
mixes severities; each image's severities are in its chain), plus ``clean``. The runner's standard rows keyed
(corruption, severity) therefore already give accuracy broken down by ``k``; their ``n``-weighted mean is the
overall ImageNet-C-Mixed accuracy. Rendered sets (``build_dataset imagenet-c-mixed``) use the folders
``ROOT/mixed_<k>/<wnid>/<file>`` and list every image's chain in ``manifest.jsonl``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..corruptions import SEVERITIES, derive_seed, get_corruption, sample_seed
from ..imageio import ImageRecord, Preprocess, evenly_spaced, load_rgb, scan_image_folder
from .base import CLEAN, Cell, EvalDataset, GridDatasetMixin, ImageCellDataset, demo_data_root, expand_corruptions
from .imagenet_c import CorruptedImageFolder, require_reference
from .registry import register_dataset
from .render import Target, output_stem

NAME = "imagenet-c-mixed"
DEFAULT_MAX_CORRUPTIONS = 3
_MIXED_FOLDER = re.compile(r"^mixed_(\d+)$")

Chain = tuple[tuple[str, int], ...]


def mixed_cell(k: int) -> Cell:
    """The cell of the images that received ``k`` corruptions."""
    return Cell(f"mixed_{k}", 0)


def chain_seed(image_id: str, seed: int, max_corruptions: int) -> int:
    """The seed of one image's chain."""
    return sample_seed(image_id, NAME, max_corruptions, seed)


def draw_chain(seed: int, pool: Sequence[str], severities: Sequence[int], max_corruptions: int) -> Chain:
    """``1 + randrange(max_corruptions)`` (corruption, severity) steps, each uniform over pool and severities."""
    if max_corruptions < 1 or not pool or not severities:
        raise ValueError("need max_corruptions >= 1, a non-empty pool and at least one severity")
    rng = random.Random(seed)
    return tuple((pool[rng.randrange(len(pool))], int(rng.choice(list(severities))))
                 for _ in range(1 + rng.randrange(max_corruptions)))


def apply_chain(pixels: np.ndarray, chain: Chain, seed: int) -> np.ndarray:
    """Apply the steps of ``chain`` in order to uint8 HWC ``pixels``; step ``i`` is seeded from (seed, i)."""
    for step, (corruption, severity) in enumerate(chain):
        pixels = get_corruption(corruption)(pixels, severity, derive_seed(seed, corruption, severity, step))
    return pixels


@dataclass(frozen=True)
class ChainSampler:
    """Draws each image's corruption chain (not a torch Sampler) from the ImageNet-C-Mixed parameters.

    See the module docstring for the defaults.
    """

    pool: tuple[str, ...]
    severities: tuple[int, ...] = SEVERITIES
    max_corruptions: int = DEFAULT_MAX_CORRUPTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.pool:
            raise ValueError("ImageNet-C-Mixed draws its chains from the corruptions of --corruptions other than "
                             "clean: name at least one (default: the 15 benchmark corruptions)")
        if self.max_corruptions < 1:
            raise ValueError(f"--max-corruptions must be >= 1 (corruptions per image), got {self.max_corruptions}")
        if not self.severities:
            raise ValueError("ImageNet-C-Mixed needs at least one severity in --severities")

    def seed_of(self, image_id: str) -> int:
        return chain_seed(image_id, self.seed, self.max_corruptions)

    def chain(self, image_id: str) -> Chain:
        return draw_chain(self.seed_of(image_id), self.pool, self.severities, self.max_corruptions)

    def settings(self) -> dict[str, Any]:
        return {"pool": list(self.pool), "severities": list(self.severities),
                "max_corruptions": self.max_corruptions, "seed": self.seed}


class MixedCell(ImageCellDataset):
    """The images of one ``mixed_<k>`` cell, each corrupted by its own chain."""

    def __init__(self, records: Sequence[ImageRecord], sampler: ChainSampler, preprocess: Preprocess) -> None:
        ImageCellDataset.__init__(self, records)
        self.sampler = sampler
        self.preprocess = preprocess

    def pixels(self, record: ImageRecord) -> np.ndarray:
        image = self.preprocess(load_rgb(record.path))
        return apply_chain(image, self.sampler.chain(record.image_id), self.sampler.seed_of(record.image_id))


@dataclass
class ImageNetCMixed(GridDatasetMixin):
    """ImageNet-C-Mixed generated on the fly from a clean ImageNet-style folder."""

    records: list[ImageRecord]
    sampler: ChainSampler
    include_clean: bool
    preprocess: Preprocess
    data_root: Path
    name: str = NAME
    _by_k: dict[int, list[ImageRecord]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for record in self.records:
            self._by_k.setdefault(len(self.sampler.chain(record.image_id)), []).append(record)

    @property
    def n_images(self) -> int:
        return len(self.records)

    def cells(self) -> list[Cell]:
        return ([Cell(CLEAN, 0)] if self.include_clean else []) + [mixed_cell(k) for k in sorted(self._by_k)]

    def cell_dataset(self, cell: Cell) -> CorruptedImageFolder:
        if cell.corruption == CLEAN:
            return CorruptedImageFolder(self.records, cell, seed=self.sampler.seed, preprocess=self.preprocess)
        match = _MIXED_FOLDER.match(cell.corruption)
        if match is None or int(match.group(1)) not in self._by_k:
            raise KeyError(f"{self.name} has no cell {cell.corruption}/{cell.severity}")
        return MixedCell(self._by_k[int(match.group(1))], self.sampler, self.preprocess)

    def breakdown(self, cell: Cell) -> dict[str, Any]:
        """``n_corruptions``: how many corruptions each image of a ``mixed_<k>`` cell received (k)."""
        match = _MIXED_FOLDER.match(cell.corruption)
        return {"n_corruptions": int(match.group(1))} if match else {}

    def manifest(self) -> list[dict[str, Any]]:
        """One row per image: its id, number of corruptions, chain seed and chain."""
        return [{"source": r.image_id, "k": len(chain), "seed": self.sampler.seed_of(r.image_id),
                 "chain": [list(step) for step in chain]}
                for r in self.records for chain in [self.sampler.chain(r.image_id)]]

    def provenance(self) -> dict[str, Any]:
        return {"data_root": str(self.data_root), "n_images": self.n_images, "seed": self.sampler.seed,
                "pool": ",".join(self.sampler.pool), "severities": ",".join(map(str, self.sampler.severities)),
                "max_corruptions": self.sampler.max_corruptions,
                "resize": self.preprocess.resize, "crop": self.preprocess.crop}


@dataclass(frozen=True)
class MixedSuite:
    """The renderer's view of ImageNet-C-Mixed: ``mixed_<k>/<wnid>/<file>`` (plus ``clean/`` if asked)."""

    sampler: ChainSampler
    include_clean: bool = False
    name: str = NAME

    def settings(self) -> dict[str, Any]:
        return {**self.sampler.settings(), "include_clean": self.include_clean}

    def targets(self, record: ImageRecord) -> list[Target]:
        stem = output_stem(record)
        chain = self.sampler.chain(record.image_id)
        mixed = Target(f"mixed_{len(chain)}/{stem}", f"mixed_{len(chain)}", 0,
                       self.sampler.seed_of(record.image_id), chain)
        return ([Target(f"{CLEAN}/{stem}", CLEAN, 0, None)] if self.include_clean else []) + [mixed]

    def render(self, target: Target, pixels: np.ndarray) -> np.ndarray:
        return pixels if target.corruption == CLEAN else apply_chain(pixels, target.chain, target.seed)


def split_pool(corruptions: str | Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    """(clean requested?, the corruption pool) from a corruption list such as ``"clean,benchmark"``."""
    names = expand_corruptions(corruptions)
    return CLEAN in names, tuple(n for n in names if n != CLEAN)


def rendered_mixed_folders(root: Path) -> dict[Cell, Path]:
    """The ``clean`` and ``mixed_<k>`` folders of a rendered ImageNet-C-Mixed root (empty if it is not one)."""
    if not root.is_dir():
        return {}
    by_k = {int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := _MIXED_FOLDER.match(p.name))}
    if not by_k:
        return {}
    folders = {Cell(CLEAN, 0): root / CLEAN} if (root / CLEAN).is_dir() else {}
    folders.update({mixed_cell(k): by_k[k] for k in sorted(by_k)})
    return folders


@register_dataset(NAME)
def imagenet_c_mixed(
    data_root: str | os.PathLike | None = None,
    corruptions: str | Sequence[str] = "clean,benchmark",
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    preprocess: Preprocess | None = None,
    limit: int | None = None,
    max_corruptions: int = DEFAULT_MAX_CORRUPTIONS,
    corruption_backend: str = "reference",
) -> EvalDataset:
    """ImageNet-C-Mixed on the fly from clean images, or read from a rendered ``mixed_<k>/`` root.

    Chains are applied by the reference code in the workers (each image has its own chain of corruptions); the
    torch backend is refused with a clear error.
    """
    from ..errors import DataError
    from .rendered import RenderedDataset, looks_rendered

    root = Path(data_root).expanduser() if data_root is not None else demo_data_root()
    include_clean, pool = split_pool(corruptions)
    folders = rendered_mixed_folders(root)
    if folders:  # a rendered set carries its own pool, severities and chains (see its manifest)
        require_reference(corruption_backend, f"the rendered ImageNet-C-Mixed set {root}")
        if not include_clean:
            folders.pop(Cell(CLEAN, 0), None)
        return RenderedDataset(root, folders, [], (preprocess or Preprocess()).crop, limit, NAME)
    if looks_rendered(root):
        raise DataError(f"{root} holds a rendered corruption set, not clean images: ImageNet-C-Mixed is generated "
                        "from a clean folder or read from a root rendered by 'build_dataset imagenet-c-mixed'")
    require_reference(corruption_backend, "ImageNet-C-Mixed on the fly",
                      "gives each image its own chain of corruptions, which only the reference backend applies (in "
                      "the DataLoader workers): use --corruption-backend reference or auto")
    sampler = ChainSampler(pool, tuple(severities), max_corruptions, seed)
    records = evenly_spaced(scan_image_folder(root), limit)
    return ImageNetCMixed(records, sampler, include_clean, preprocess or Preprocess(), root)
