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
