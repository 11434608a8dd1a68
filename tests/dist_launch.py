"""``run_suite``'s command line with the tests' stand-ins registered, for the torchrun subprocesses of
test_distributed.py (``python -m torch.distributed.run ... tests/dist_launch.py ARGS``)."""

from __future__ import annotations

import os
import signal
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import conftest  # noqa: E402,F401 - registers tiny_test_model

from robustbench_sympie import Enhancer, register_enhancer  # noqa: E402
from robustbench_sympie.cli.run_suite import main  # noqa: E402


@register_enhancer("test_fails_on_rank1", overwrite=True)
class FailsOnRank1(Enhancer):
    """Identity, except that on rank 1 its second batch raises (the second cell of a one-batch-per-cell grid),
    or kills the process with SIGKILL when ``TEST_KILL_RANK1`` is set."""

    name = "test_fails_on_rank1"
    calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        if os.environ.get("RANK") == "1" and type(self).calls == 2:
            if os.environ.get("TEST_KILL_RANK1"):
                os.kill(os.getpid(), signal.SIGKILL)  # a rank that dies without a word
            raise RuntimeError("test enhancer failed on purpose")
        return images


if __name__ == "__main__":
    sys.exit(main())
