"""Command-line entry points (``run_suite``, ``publish_leaderboard``, ``check_regression``, ``build_dataset``,
``train_sympie``). Kept free of heavy imports so that ``--help`` is instant."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: ...)`` to a flag's help unless its text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower():
            return text
        return super()._get_help_string(action)


def open_unit_float(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (a significance or confidence level)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value
