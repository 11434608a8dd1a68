"""The ImageNet-1k class index: wnid <-> class index (sorted wnid order, as torchvision) <-> name."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ClassIndex:
    """The 1000 ImageNet classes; ``index`` is the position of the wnid in sorted order."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]

    @functools.cached_property
    def index_of(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.wnids)}

    def __len__(self) -> int:
        return len(self.wnids)


@functools.cache
def imagenet_classes() -> ClassIndex:
    """The ImageNet-1k classes from the vendored ``imagenet_classes.tsv`` (index, wnid, name)."""
    text = resources.files("robustbench_sympie.data").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    rows.sort(key=lambda r: int(r["index"]))
    wnids = tuple(r["wnid"] for r in rows)
    if list(wnids) != sorted(wnids) or len(wnids) != 1000:
        raise RuntimeError("imagenet_classes.tsv is corrupted: expected 1000 wnids in sorted order")
    return ClassIndex(wnids, tuple(r["name"] for r in rows))
