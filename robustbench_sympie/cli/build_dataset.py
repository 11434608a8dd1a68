"""``build_dataset``: render a corruption suite from a clean ImageNet-style folder to the published layout.

Heavy modules are imported only after argument parsing, so ``build_dataset --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import DefaultsHelpFormatter
from .quiet_pipe import quiet_broken_pipe
from .run_suite import non_negative_int, parse_severities

#: suite name -> default corruption list
SUITES: dict[str, str] = {
    "imagenet-c": "clean,all-imagenet-c",
    "colour-warps": "clean,colour_warp",
    "imagenet-c-mixed": "benchmark",
    "imagenet-c-bar": "clean,imagenet-c-bar",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build_dataset",
        description="Render a corruption suite from clean ImageNet-style images to ROOT/<corruption>/<severity>/"
        "<wnid>/<file> (ImageNet-C-Mixed: ROOT/mixed_<k>/<wnid>/<file>), JPEG quality 85 as published, with a "
        "manifest for verification. Rerunning the same command resumes.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("name", choices=sorted(SUITES), help="the suite to render")
    p.add_argument("--out", required=True, metavar="ROOT", help="output folder (created; resumed if it exists)")
    p.add_argument("--source", metavar="CLEAN_DIR", help="clean ImageNet-style folder (<wnid>_*.JPEG files or "
                   "<wnid>/ subfolders); required unless --verify")
    p.add_argument("--corruptions", default=None, metavar="NAMES",
                   help="comma-separated corruptions or groups; for imagenet-c-mixed, the pool (add 'clean' to "
                   "also write clean/); default per suite: "
                   + "; ".join(f"{k}: {v}" for k, v in SUITES.items()))
    p.add_argument("--severities", type=parse_severities, default=parse_severities("1-5"), metavar="LIST",
                   help="severities such as 3, 1,3 or 1-5")
    p.add_argument("--max-corruptions", type=int, default=3, metavar="K",
                   help="imagenet-c-mixed: each image gets 1 + randrange(K) corruptions")
    p.add_argument("--seed", type=int, default=0, help="run seed mixed into every sample's corruption seed")
    p.add_argument("--format", choices=["jpeg", "png"], default="jpeg",
                   help="jpeg: quality 85, optimize=True (the published ImageNet-C); png: lossless")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="render N images spread over the folder")
    p.add_argument("--resize", type=int, default=256, help="shorter side before the centre crop")
    p.add_argument("--crop", type=int, default=224, help="centre-crop size")
    p.add_argument("--workers", type=non_negative_int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--verify", action="store_true", help="re-hash the files of --out against its manifest and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def make_suite(args: argparse.Namespace):
    """The suite object for ``args.name``."""
    from robustbench_sympie.datasets import expand_corruptions
    from robustbench_sympie.datasets.render import GridSuite

    corruptions = args.corruptions or SUITES[args.name]
    if args.name == "imagenet-c-mixed":
        from robustbench_sympie.datasets.mixed import ChainSampler, MixedSuite, split_pool

        include_clean, pool = split_pool(corruptions)
        return MixedSuite(ChainSampler(pool, tuple(args.severities), args.max_corruptions, args.seed), include_clean)
    names = expand_corruptions(corruptions)
    if args.name == "colour-warps":
        from robustbench_sympie.datasets.colour_warps import warp_corruptions

        names = warp_corruptions(names)
    return GridSuite(tuple(names), tuple(args.severities), args.seed, args.name)


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from robustbench_sympie.errors import SuiteError
    from robustbench_sympie.registry import UnknownNameError

    try:
        return _verify(args) if args.verify else _build(args)
    except (SuiteError, UnknownNameError, ValueError) as exc:
        print(f"build_dataset: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("build_dataset: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _verify(args: argparse.Namespace) -> int:
    from robustbench_sympie.datasets.render import verify

    problems = verify(args.out)
    for problem in problems:
        print(problem)
    print(f"{args.out}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def _build(args: argparse.Namespace) -> int:
    import logging

    from robustbench_sympie.datasets.render import render
    from robustbench_sympie.imageio import Preprocess

    if not args.source:
        raise ValueError("--source CLEAN_DIR is required to render")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file, not a folder: give a new folder (or one to resume)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    report = render(make_suite(args), args.source, args.out, fmt=args.format, workers=args.workers,
                    preprocess=Preprocess(args.resize, args.crop), limit=args.limit, progress=not args.no_progress)
    print(f"{args.out}: wrote {report.written} file(s) in {report.seconds:.1f} s; {report.skipped_images} image(s) "
          f"already complete; {len(report.errors)} unreadable source(s)")
    for error in report.errors:
        print(f"  skipped {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
