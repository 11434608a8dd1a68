"""Render a corruption suite from a clean ImageNet-style folder to the published on-disk layout.

A *suite* (ImageNet-C, the colour warps, ImageNet-C-Mixed, ...) says which files to write for each clean
image and how to compute their pixels. The renderer decodes and preprocesses each clean image once (resize 256,
centre crop 224, as the published set), renders all its targets, and saves them as JPEG at quality 85 with
``optimize=True`` through PIL, as Hendrycks & Dietterich's ``make_imagenet_c.py`` did (or lossless PNG).

Work runs in parallel over processes, one task per clean image. Files are written atomically and listed in
``manifest.jsonl`` (output and source SHA-256, corruption, severity, seed, and the chain for mixed suites) as
soon as their image finishes, so an interrupted run resumes where it stopped. ``manifest.json`` holds the
settings and package versions; resuming with other settings is refused. :func:`verify` re-hashes every file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..atomic import write_atomic
from ..corruptions import get_corruption, sample_seed
from ..errors import DataError
from ..image_set import image_ids_id
from ..imageio import ImageRecord, Preprocess, evenly_spaced, load_rgb, scan_image_folder
from ..labels import imagenet_classes
from .base import CLEAN

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ENTRIES = "manifest.jsonl"
JPEG_QUALITY = 85  # make_imagenet_c.py: Image.fromarray(...).save(path, quality=85, optimize=True)
FORMATS: dict[str, str] = {"jpeg": ".JPEG", "png": ".png"}
VERSIONED_PACKAGES: tuple[str, ...] = (
    "robustbench-sympie", "numpy", "pillow", "imagecorruptions-imaug", "scipy", "scikit-image", "opencv-python",
    "opencv-python-headless", "torch", "torchvision",
)


@dataclass(frozen=True)
class Target:
    """One file to write for one clean image: where, which cell, and the seed (and chain) that make it."""

    relative: str  # path under the output root, without extension
    corruption: str
    severity: int
    seed: int | None
    chain: tuple[tuple[str, int], ...] = ()


class Suite(Protocol):
    """What the renderer needs from a corruption suite (instances must be picklable)."""

    name: str

    def settings(self) -> dict[str, Any]: ...

    def targets(self, record: ImageRecord) -> list[Target]: ...

    def render(self, target: Target, pixels: np.ndarray) -> np.ndarray: ...


def output_stem(record: ImageRecord) -> str:
    """``<wnid>/<file stem>``: the class folder and the source file name, as the published set."""
    return f"{imagenet_classes().wnids[record.label]}/{Path(record.image_id).stem}"


@dataclass(frozen=True)
class GridSuite:
    """ImageNet-C-style grid: every corruption at every severity (plus ``clean``), ``<c>/<s>/<wnid>/<file>``."""

    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int = 0
    name: str = "imagenet-c"

    def settings(self) -> dict[str, Any]:
        return {"corruptions": list(self.corruptions), "severities": list(self.severities), "seed": self.seed}

    def targets(self, record: ImageRecord) -> list[Target]:
        stem = output_stem(record)
        out = []
        for corruption in self.corruptions:
            if corruption == CLEAN:
                out.append(Target(f"{CLEAN}/{stem}", CLEAN, 0, None))
                continue
            out.extend(Target(f"{corruption}/{s}/{stem}", corruption, s,
                              sample_seed(record.image_id, corruption, s, self.seed)) for s in self.severities)
        return out

    def render(self, target: Target, pixels: np.ndarray) -> np.ndarray:
        if target.corruption == CLEAN:
            return pixels
        return get_corruption(target.corruption)(pixels, target.severity, target.seed)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """The file bytes of ``pixels`` (uint8 HWC) as published: JPEG quality 85 optimised, or PNG."""
    buffer = io.BytesIO()
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()




def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_record(suite: Suite, record: ImageRecord, out: Path, fmt: str, preprocess: Preprocess,
                  done: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Render the targets of one clean image not in ``done``; returns their manifest entries (or one error)."""
    try:
        source_bytes = Path(record.path).read_bytes()
        pixels = preprocess(load_rgb(record.path))
    except OSError as exc:
        return [{"error": f"{record.path}: {exc}", "source": record.image_id}]
    source_hash = _sha256(source_bytes)
    entries = []
    for target in suite.targets(record):
        relative = target.relative + FORMATS[fmt]
        if relative in done:
            continue
        data = encode(suite.render(target, pixels), fmt)
        write_atomic(out / relative, data)
        entry = {"file": relative, "source": record.image_id, "source_sha256": source_hash,
                 "corruption": target.corruption, "severity": target.severity, "seed": target.seed,
                 "sha256": _sha256(data)}
        if target.chain:
            entry["chain"] = [list(step) for step in target.chain]
        entries.append(entry)
    return entries


def package_versions() -> dict[str, str]:
    """Versions of the installed packages that determine the pixels."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def read_entries(root: Path) -> list[dict[str, Any]]:
    """The manifest entries written so far (a torn last line from a crash is ignored)."""
    path = root / ENTRIES
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: ignoring a torn manifest line", path)
    return entries


def _end_with_newline(path: Path) -> None:
    """Terminate a torn last line (a crash mid-write) so the next entry starts on a line of its own."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


def _check_header(out: Path, header: dict[str, Any]) -> None:
    """Write ``manifest.json`` or, when resuming, refuse settings that differ from the recorded ones."""
    path = out / MANIFEST
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
        return
    recorded = json.loads(path.read_text(encoding="utf-8"))
    if "source_images" in recorded and recorded["source_images"] != header["source_images"]:
        raise DataError(f"{path}: {out} was rendered from other source images ({recorded.get('source')}, image set "
                        f"{recorded['source_images']}) than {header['source']} ({header['source_images']}); "
                        "choose another --out, or the same source to resume")
    for key in ("suite", "settings", "format", "jpeg_quality", "resize", "crop"):
        if recorded.get(key) != header.get(key):
            raise DataError(f"{path}: {out} was rendered with {key}={recorded.get(key)!r}, not {header.get(key)!r}; "
                            "choose another --out or the same settings to resume")
    if recorded.get("versions") != header["versions"]:
        log.warning("%s: resuming with package versions that differ from the recorded ones", path)


@dataclass
class RenderReport:
    """What a render call did."""

    written: int = 0
    skipped_images: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def render(suite: Suite, source: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "jpeg",
           workers: int = 1, preprocess: Preprocess | None = None, limit: int | None = None,
           progress: bool = False) -> RenderReport:
    """Render ``suite`` from the clean folder ``source`` into ``out`` (resumable; see the module docstring)."""
    if fmt not in FORMATS:
        raise DataError(f"image format must be one of {sorted(FORMATS)}, got {fmt!r}")
    preprocess = preprocess or Preprocess()
    source, out = Path(source).expanduser(), Path(out).expanduser()
    source_records = scan_image_folder(source)
    records = evenly_spaced(source_records, limit)
    header = {"suite": suite.name, "settings": suite.settings(), "format": fmt,
              "jpeg_quality": JPEG_QUALITY if fmt == "jpeg" else None, "resize": preprocess.resize,
              "crop": preprocess.crop, "source": str(source), "n_source_images": len(records),
              "source_images": image_ids_id(r.image_id for r in source_records),
              "versions": package_versions()}
    _check_header(out, header)
    done = {e["file"] for e in read_entries(out) if "file" in e}
    jobs = []  # (record, the files of that record already done)
    for record in records:
        files = {t.relative + FORMATS[fmt] for t in suite.targets(record)}
        if not files <= done:
            jobs.append((record, frozenset(files & done)))
    report = RenderReport(skipped_images=len(records) - len(jobs))
    start = time.perf_counter()
    _end_with_newline(out / ENTRIES)
    with open(out / ENTRIES, "a", encoding="utf-8") as manifest:
        for entries in _run(suite, jobs, out, fmt, preprocess, workers, progress):
            for entry in entries:
                if "error" in entry:
                    report.errors.append(entry["error"])
                    log.warning("skipped unreadable source %s", entry["error"])
                    continue
                manifest.write(json.dumps(entry) + "\n")
                report.written += 1
            manifest.flush()
    report.seconds = time.perf_counter() - start
    return report


def _run(suite: Suite, jobs: Sequence[tuple[ImageRecord, frozenset[str]]], out: Path, fmt: str,
         preprocess: Preprocess, workers: int, progress: bool) -> Iterable[list[dict[str, Any]]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), unit="img", desc=suite.name, disable=not progress)
    if workers <= 1:
        for record, done in jobs:
            yield render_record(suite, record, out, fmt, preprocess, done)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(render_record, suite, r, out, fmt, preprocess, d) for r, d in jobs]
            for future in futures:
                yield future.result()
                bar.update(1)
    bar.close()


def verify(root: str | os.PathLike) -> list[str]:
    """Re-hash every file listed in the manifest; returns one message per missing or changed file."""
    root = Path(root).expanduser()
    if not (root / MANIFEST).exists():
        raise DataError(f"{root / MANIFEST} not found: not a folder written by build_dataset")
    problems = []
    for entry in read_entries(root):
        path = root / entry["file"]
        if not path.exists():
            problems.append(f"{path}: missing")
        elif _sha256(path.read_bytes()) != entry["sha256"]:
            problems.append(f"{path}: content differs from the manifest")
    return problems
