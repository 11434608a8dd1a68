"""``check_regression NEW.csv --baseline GOLDEN.csv``: fail (exit 1) when accuracy regressed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import DefaultsHelpFormatter, open_unit_float
from .quiet_pipe import quiet_broken_pipe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check_regression",
        description="Compare a fresh results table with a golden one cell by cell. Exit 0 when no cell dropped, "
        "1 on a regression, 2 on an error (unreadable file, or a cell missing on either side).",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("new", help="results.csv of the run under test")
    p.add_argument("--baseline", required=True, help="golden results.csv to compare with")
    p.add_argument("--tolerance", type=_tolerance, default=3.0,
                   help="largest allowed drop of top-1, in percentage points (finite, >= 0)")
    p.add_argument("--alpha", type=open_unit_float, default=None,
                   help="also require the drop to be significant (one-sided two-proportion test, p < ALPHA; "
                   "0 < ALPHA < 1)")
    return p


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a finite number of points >= 0, got {text!r}")
    return value


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from robustbench_sympie.errors import SuiteError
    from robustbench_sympie.regression import compare_files

    try:
        report = compare_files(args.new, args.baseline, tolerance_pts=args.tolerance, alpha=args.alpha)
    except (SuiteError, OSError, ValueError) as exc:
        print(f"check_regression: error: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    if report.has_missing:
        return 2
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
