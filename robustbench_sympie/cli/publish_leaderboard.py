"""``publish_leaderboard``: turn results files into markdown tables, CSVs and heatmaps (and the FLOPs table).

Heavy modules (pandas, torch, matplotlib) are imported only after argument parsing, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from . import DefaultsHelpFormatter, open_unit_float
from .quiet_pipe import quiet_broken_pipe

#: default output folder: a folder of its own, never the repository's tracked leaderboards/
DEFAULT_OUT = "published_leaderboard"
#: the file publish_leaderboard keeps in the folders it writes, listing the files it wrote
MARKER = ".publish_leaderboard"


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="publish_leaderboard",
        description="Aggregate results.csv files of run_suite (several runs, machines or shards: duplicated cells "
        "are detected and counted once) and write markdown leaderboards, CSVs of every number and heatmaps of "
        "enhancer minus identity. With --flops, also (re)compute the FLOPs leaderboard of every registered "
        "enhancer and model.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("results", nargs="*", metavar="RESULTS", help="results.csv files written by run_suite")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="output directory; it must be new, empty, or one publish_leaderboard wrote (it keeps a "
                   f"{MARKER} file listing its files, and overwrites only those) unless --force")
    p.add_argument("--force", action="store_true",
                   help="write into --out even when it holds files publish_leaderboard did not write")
    p.add_argument("--baseline", default=None, metavar="ENHANCER",
                   help="enhancer the deltas are measured against; one given here must have results "
                   "(default: identity, when it has)")
    p.add_argument("--confidence", type=open_unit_float, default=0.95, help="confidence level of the delta intervals")
    p.add_argument("--on-duplicate", choices=("error", "first", "last"), default="error",
                   help="what to do when a cell appears in several files with different numbers (identical "
                   "copies are always merged)")
    p.add_argument("--no-paired", action="store_true",
                   help="ignore per-image records (OUT/records/ beside each results.csv) and publish only the "
                   "unpaired (Newcombe) deltas")
    p.add_argument("--flops", action="store_true",
                   help="(re)compute FLOPs/params at 224x224 and 1920x1080 and write flops.md/flops.csv to --out")
    p.add_argument("--flops-models", type=_names, default=None, metavar="NAMES",
                   help="restrict --flops to these comma-separated models (default: every registered model)")
    return p


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.results and not args.flops:
        parser.error("give RESULTS files, --flops, or both")
    command = "publish_leaderboard " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    from robustbench_sympie.errors import SuiteError
    from robustbench_sympie.registry import RegistryError, UnknownNameError

    try:
        if args.results:
            _publish_results(args, command)
        if args.flops:
            _publish_flops(args, command)
    except (SuiteError, UnknownNameError, RegistryError, ValueError, OSError) as exc:
        print(f"publish_leaderboard: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _publish_results(args: argparse.Namespace, command: str) -> None:
    from dataclasses import replace

    from robustbench_sympie.aggregate import ConflictingCellsError, load_results
    from robustbench_sympie.errors import DataError
    from robustbench_sympie.publish import publish, readme

    try:
        loaded = load_results(args.results, on_conflict=args.on_duplicate)
    except ConflictingCellsError as exc:  # name the command-line flag, not the Python argument
        raise DataError(f"{exc.what}; pass --on-duplicate first|last to choose which copy counts") from None
    if loaded.frame.empty:
        raise DataError(f"{', '.join(map(str, args.results))}: no result rows to publish (only a header)")
    if args.baseline is None:
        args.baseline = "identity"
    elif args.baseline not in set(loaded.frame["enhancer"]):
        from robustbench_sympie.registry import UnknownNameError

        unknown = UnknownNameError("enhancer", args.baseline, set(loaded.frame["enhancer"]))
        raise DataError(f"--baseline {args.baseline!r} has no results in these files: {unknown}")
    if len(loaded.duplicates):
        conflicts = int(loaded.duplicates["conflict"].sum())
        print(f"publish_leaderboard: {loaded.n_dropped} duplicated cell row(s) merged "
              f"({conflicts} row(s) in conflicting copies, resolved by --on-duplicate {args.on_duplicate})",
              file=sys.stderr)
    records = None
    if not args.no_paired:
        from pathlib import Path

        from robustbench_sympie.records import RECORDS_DIR, load_records

        folders = [Path(r).parent for r in args.results if (Path(r).parent / RECORDS_DIR).is_dir()]
        records = load_records(*folders) if folders else None
    from pathlib import Path

    from robustbench_sympie.output_folder import staged_output
    from robustbench_sympie.segmentation_report import (
        is_segmentation,
        load_segmentation_records,
        publish_segmentation,
    )

    segmentation = is_segmentation(loaded.frame)
    with staged_output(args.out, marker_name=MARKER, tool="publish_leaderboard", force=args.force) as staging:
        if segmentation.any():
            seg_records = None if args.no_paired else load_segmentation_records(
                *sorted({Path(r).parent for r in args.results}))
            paths = publish_segmentation(loaded.frame, staging, args.baseline, records=seg_records,
                                         confidence=args.confidence)
        else:
            paths = []
        if not segmentation.all():
            classification = replace(loaded, frame=loaded.frame[~segmentation].reset_index(drop=True))
            paths += publish(classification, staging, command=command, baseline=args.baseline,
                             confidence=args.confidence, records=records)
        if segmentation.any():  # the folder's README lists every file, the segmentation tables included
            paths = [p for p in paths if p.name != "README.md"]
            readme_path = Path(staging) / "README.md"
            readme_path.write_text(readme(loaded, paths, command), encoding="utf-8")
            paths.append(readme_path)
    print(f"wrote {len(paths)} files to {args.out}")


def _publish_flops(args: argparse.Namespace, command: str) -> None:
    from robustbench_sympie.enhancers import list_enhancers
    from robustbench_sympie.flops import flops_table, sympie_breakdown
    from robustbench_sympie.models.registry import MODELS
    from robustbench_sympie.publish import publish_flops

    for name in args.flops_models or ():
        MODELS.get(name)  # unknown names fail here with a suggestion
    flops = flops_table(models=args.flops_models)
    breakdown = sympie_breakdown() if "sympie" in list_enhancers() else None
    from robustbench_sympie.output_folder import staged_output

    with staged_output(args.out, marker_name=MARKER, tool="publish_leaderboard", force=args.force) as staging:
        paths = publish_flops(flops, breakdown, staging, command=command)
    print(f"wrote {', '.join(p.name for p in paths)} to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
