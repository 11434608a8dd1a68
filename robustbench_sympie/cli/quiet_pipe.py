"""Command-line mains exit quietly when their reader goes away (``run_suite --list | head -1``)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., int])

#: the status a shell reports for a process killed by SIGPIPE (128 + 13), as for any command-line tool
BROKEN_PIPE_STATUS = 141


def quiet_broken_pipe(main: F) -> F:
    """Wrap a CLI ``main``: a closed stdout ends the program silently instead of with a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            status = main(*args, **kwargs)
            sys.stdout.flush()  # flush inside the guard, not at interpreter exit
            return status
        except BrokenPipeError:
            # Python flushes stdout again at exit: point it at devnull so that flush cannot fail too
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            finally:
                os.close(devnull)
            return BROKEN_PIPE_STATUS

    return wrapper  # type: ignore[return-value]
