"""``run_suite``: evaluate enhancers x models on a corruption benchmark and print the summary.

Heavy modules (torch, torchvision, pandas) are imported only after argument parsing, so
``run_suite --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from . import DefaultsHelpFormatter
from .quiet_pipe import quiet_broken_pipe

#: what runs when no data argument is given: the embedded demo images, a handful of corruptions
DEMO_CORRUPTIONS = "clean,gaussian_noise,defocus_blur,fog,contrast,jpeg_compression"
DEMO_SEVERITIES = "3"
FULL_CORRUPTIONS = "clean,benchmark"
FULL_SEVERITIES = "1-5"


def parse_severities(text: str) -> list[int]:
    """``"3"``, ``"1,3,5"`` or ``"1-5"`` -> sorted list of ints in 1..5."""
    values: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not re.fullmatch(r"\d+(-\d+)?", part):
            raise argparse.ArgumentTypeError(f"severities must look like 3, 1,3,5 or 1-5; got {text!r}")
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise argparse.ArgumentTypeError(f"severity range {part!r} is empty: write it low-high, e.g. {hi}-{lo}")
        values.extend(range(int(lo), int(hi or lo) + 1))
    if not values:
        raise argparse.ArgumentTypeError(f"names no severity: give e.g. 3, 1,3,5 or 1-5; got {text!r}")
    if any(v < 1 or v > 5 for v in values):
        raise argparse.ArgumentTypeError(f"severities must be within 1..5; got {text!r}")
    return sorted(set(values))


def _csv(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:  # an empty list is never "the default"
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated names, got {text!r}")
    return names


def _names_text(text: str) -> str:
    """A comma-separated list kept as text (groups are expanded later), checked to name something."""
    _csv(text)
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (worker counts: 0 = the main process)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


#: device strings run_suite accepts (checked before anything heavy is imported)
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def _device(text: str) -> str:
    if not _DEVICE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N, mps or auto, got {text!r}")
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_suite",
        description="Evaluate input enhancers x downstream models on corrupted images (ImageNet-C style). "
        "With no data argument it runs the main job on the demo images embedded in the package.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--list", action="store_true", help="list registered enhancers, models, datasets and "
                   "corruptions, then exit")
    p.add_argument("--enhancer", type=_names_text, default=None, metavar="SPECS",
                   help="comma-separated enhancers, each optionally with constructor arguments after colons, e.g. "
                   "'identity,sympie:weights=PATH,tv_denoise:weight=0.2' (default: identity, plus sympie when "
                   "weights for the model are packaged)")
    p.add_argument("--model", type=_csv, default=["efficientnet_lite0"], metavar="NAMES",
                   help="comma-separated downstream models (any torchvision classifier, efficientnet_lite0..2)")
    p.add_argument("--weights", default=None, metavar="NAME|PATH",
                   help="model weights: a torchvision weights name (DEFAULT, IMAGENET1K_V1, V2, ...) or a local "
                   "state-dict file (default: the model's default weights)")
    p.add_argument("--enhancer-weights", default=None, metavar="PATH|NAME",
                   help="weights file (or named entry) for every enhancer that takes weights and was given none "
                   "with NAME:weights=... (default: the entry registered for the downstream model)")
    p.add_argument("--allow-untrained", action="store_true",
                   help="evaluate enhancers that need weights without them (reported as NAME[untrained])")
    p.add_argument("--dataset", default="imagenet-c", help="registered dataset name")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="clean ImageNet-style folder (<wnid>_*.JPEG files or <wnid>/ subfolders); "
                   "default: the embedded demo images")
    p.add_argument("--corruptions", type=_names_text, default=None, metavar="NAMES",
                   help="comma-separated corruptions or groups (clean, benchmark, extra, noise, blur, weather, "
                   f"digital, ...); default: {DEMO_CORRUPTIONS!r} on the demo images, {FULL_CORRUPTIONS!r} with "
                   "--data-root")
    p.add_argument("--severities", type=parse_severities, default=None, metavar="LIST",
                   help=f"severities such as 3, 1,3 or 1-5; default: {DEMO_SEVERITIES} on the demo images, "
                   f"{FULL_SEVERITIES} with --data-root")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate N images spread evenly over the sorted folder (default: all)")
    p.add_argument("--seed", type=int, default=0, help="run seed mixed into every sample's corruption seed")
    p.add_argument("--resize", type=int, default=256, help="shorter side before the centre crop")
    p.add_argument("--crop", type=int, default=224, help="centre-crop size (ImageNet-C geometry: 256 -> 224)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per batch")
    p.add_argument("--workers", type=non_negative_int, default=min(4, os.cpu_count() or 1),
                   help="DataLoader worker processes (0 = load in the main process)")
    p.add_argument("--device", type=_device, default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory for results.csv and summary.md; rerunning the same command resumes "
                   "there (default: runs/<dataset>-<data folder name or 'demo'>)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--corruption-backend", choices=("auto", "reference", "torch"), default="auto",
                   help="where on-the-fly corruptions are computed: 'reference' (the published imagecorruptions "
                   "code, per image in the workers), 'torch' (batched on the evaluation device), 'auto' (torch on "
                   "CUDA, reference elsewhere); recorded in every row and in the configuration hash")
    p.add_argument("--decode", choices=("auto", "workers", "device"), default="auto",
                   help="where JPEG files are decoded: 'workers' (Pillow, in the DataLoader workers), 'device' (the "
                   "workers read the bytes, the device decodes them and resizes and crops there: nvJPEG on CUDA; "
                   "only for images that need no corruption in the workers), 'auto' (device on CUDA, workers "
                   "elsewhere); recorded in every row, and in the configuration hash when 'device'")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast precision of enhancers and models (fp32 is exact)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (speed, GPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile enhancers and models (speed, GPU)")
    p.add_argument("--no-records", action="store_true",
                   help="do not write per-image records (OUT/records/*.parquet; needed for paired statistics)")
    p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="evaluate only shard K of N (K = 0..N-1) of every cell's images, without a process group "
                   "(job arrays); the default --out gets a -shard-K-of-N suffix; publish_leaderboard merges the "
                   "shards' results.csv files into whole cells")
    p.add_argument("--dist-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="under torchrun: how long a rank waits for the others in a collective before the run stops")
    return p


def _shard(text: str) -> tuple[int, int]:
    from robustbench_sympie.distributed import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def print_listing() -> None:
    from robustbench_sympie.corruptions import CORRUPTION_GROUPS, CORRUPTIONS
    from robustbench_sympie.datasets import list_datasets
    from robustbench_sympie.enhancers import ENHANCERS
    from robustbench_sympie.models import list_models

    print("enhancers:  " + ", ".join(ENHANCERS.names()))
    print("models:     " + ", ".join(list_models()))
    print("datasets:   " + ", ".join(list_datasets()))
    families: dict[str, list[str]] = {}
    for name in CORRUPTIONS.names():
        families.setdefault(CORRUPTIONS.get(name).family, []).append(name)
    print("corruptions (clean = uncorrupted, severity 0):")
    order = ["noise", "blur", "weather", "digital", "extra", "imagenet_c_bar", "colour_warp"]
    for family, names in sorted(families.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99,
                                                                   kv[0])):
        print(f"  {family:12s} {', '.join(names)}")
    print("corruption groups: " + ", ".join(sorted(CORRUPTION_GROUPS)))


def default_enhancers(models: Sequence[str]) -> list[str]:
    """identity, plus sympie when every requested model has packaged SyMPIE weights."""
    try:
        from robustbench_sympie.enhancers.sympie_weights import default_weights_for
    except ImportError:
        return ["identity"]
    usable = all((e := default_weights_for(m)) is not None and e.packaged and e.is_available() for m in models)
    return ["identity", "sympie"] if usable else ["identity"]


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from robustbench_sympie.errors import SuiteError
    from robustbench_sympie.registry import RegistryError, UnknownNameError

    try:
        if args.list:
            print_listing()
            return 0
        return _run(args)
    except (SuiteError, UnknownNameError, RegistryError, ValueError) as exc:
        print(f"run_suite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run_suite: interrupted; finished cells are saved, rerun the same command to resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import logging

    from robustbench_sympie.atomic import write_atomic
    from robustbench_sympie.distributed import is_main_process
    from robustbench_sympie.runner import SuiteConfig, run_suite
    from robustbench_sympie.summary import format_summary

    rank = os.environ.get("RANK", "0")
    where = "" if rank == "0" else f"[rank {rank}] "
    logging.basicConfig(level=logging.INFO if rank == "0" else logging.WARNING,
                        format=f"%(levelname)s {where}%(message)s")
    demo = args.data_root is None
    corruptions = args.corruptions or (DEMO_CORRUPTIONS if demo else FULL_CORRUPTIONS)
    severities = args.severities or parse_severities(DEMO_SEVERITIES if demo else FULL_SEVERITIES)
    out = args.out or str(Path("runs") / f"{args.dataset}-{'demo' if demo else Path(args.data_root).name}")
    if args.shard and not args.out:
        out += f"-shard-{args.shard[0]}-of-{args.shard[1]}"
    enhancers = [args.enhancer] if args.enhancer is not None else default_enhancers(args.model)
    config = SuiteConfig(
        enhancers=enhancers, models=args.model, dataset=args.dataset, data_root=args.data_root,
        corruptions=corruptions, severities=severities, seed=args.seed, limit=args.limit,
        resize=args.resize, crop=args.crop, batch_size=args.batch_size, workers=args.workers, device=args.device,
        out=out, model_weights=args.weights, enhancer_weights=args.enhancer_weights,
        allow_untrained=args.allow_untrained, progress=not args.no_progress, records=not args.no_records,
        corruption_backend=args.corruption_backend, decode=args.decode, precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile, shard=args.shard, dist_timeout=args.dist_timeout,
    )
    results = run_suite(config)
    if not is_main_process():
        return 0  # rank 0 writes the summary and prints it
    this_run = results[results["model"].isin(config.models)]
    text = format_summary(this_run)
    write_atomic(Path(out) / "summary.md", text + "\n")
    print(text)
    print(f"\nresults: {Path(out) / 'results.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
