"""Exceptions with actionable messages, shared across the suite."""

from __future__ import annotations


class SuiteError(RuntimeError):
    """Base class of the errors the command line prints without a traceback."""


class WeightsNotFoundError(SuiteError, FileNotFoundError):
    """Weights that are neither on disk nor downloadable; the message says where to put them."""


class DataError(SuiteError, ValueError):
    """Input data that the suite cannot use as given (the message names the file or key)."""


class MissingExtraError(SuiteError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class WeightsFormatError(DataError):
    """A weights file that exists but cannot be read as a state dict (never reported as "not found")."""
