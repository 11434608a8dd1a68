"""pytest plugin (auto-loaded through the ``pytest11`` entry point): accuracy regression fixtures.

In a user's test suite::

    def test_my_model_did_not_regress(accuracy_regression, tmp_path):
        frame = run_suite(SuiteConfig(..., progress=False, out=tmp_path))
        accuracy_regression(frame, "tests/golden_results.csv", tolerance_pts=2.0)

The golden file is the ``results.csv`` of the same grid run once on a trusted version (README.md,
"Accuracy regression testing in CI", has a complete, copyable example).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def accuracy_regression() -> Callable:
    """``check(new, golden, tolerance_pts=3.0, alpha=None)``: fails the test on a regression or missing cell."""
    from .regression import assert_no_regression

    return assert_no_regression
