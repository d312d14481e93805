"""A line on stderr when a step takes longer than expected, so a silent wait is not a hang."""

from __future__ import annotations

import contextlib
import sys
import threading


@contextlib.contextmanager
def notice_if_slow(message: str, after_s: float = 2.0, stream=None):
    """Print `message` once if the body is still running after `after_s` seconds."""
    stream = stream if stream is not None else sys.stderr
    timer = threading.Timer(after_s, lambda: print(message, file=stream, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
