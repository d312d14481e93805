"""A progress line for long jobs made of stages of unequal steps, with an honest time left.

The job announces its stages up front (name, steps, work per step: any unit, only ratios count,
e.g. seconds of audio analysed). Each call of the object is one step; the time left is the work
left times the time the work done so far took, so a stage of slow steps (a network fit) does not
make the estimate jump as a count of steps would. On a terminal the line updates in place (one
line on stderr); elsewhere (a log, a pipe) a plain line is written when a stage starts and every
PLAIN_EVERY_S seconds.
"""
from __future__ import annotations

import sys
import time
from typing import NamedTuple, Sequence, TextIO

PLAIN_EVERY_S = 10.0
REFRESH_S = 0.2


class Stage(NamedTuple):
    name: str
    steps: int
    work: float          # per step


class Progress:
    """Call once per step; close() when done (clears the terminal line)."""

    def __init__(self, stages: Sequence[Stage], title: str = "training", stream: TextIO | None = None,
                 clock=time.monotonic, started: float | None = None):
        """started: the clock() at which the work began (default: now)."""
        self.stages = [s for s in stages if s.steps > 0]
        self.total = sum(s.steps * s.work for s in self.stages) or 1.0
        self.title, self.stream, self.clock = title, stream or sys.stderr, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = clock() if started is None else started
        self.stage, self.step, self.done = 0, 0, 0.0
        self.shown = self.last_plain = -1e9
        self.lines = 0
        self._show(force=True)

    def __call__(self) -> None:
        if self.stage >= len(self.stages):
            return
        self.done += self.stages[self.stage].work
        self.step += 1
        new_stage = self.step >= self.stages[self.stage].steps
        if new_stage:
            self.stage, self.step = self.stage + 1, 0
        self._show(force=new_stage)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0)

    def seconds_left(self) -> float | None:
        """Work left at the pace of the work done; None before any work is done."""
        if self.done <= 0:
            return None
        return max(0.0, (self.clock() - self.t0) * (self.total - self.done) / self.done)

    def text(self) -> str:
        name = self.stages[self.stage].name if self.stage < len(self.stages) else "done"
        left = self.seconds_left()
        eta = "" if left is None else f", about {left:.0f} s left"
        return f"{self.title}: {100 * self.fraction:3.0f}% {name}{eta}"

    def _show(self, force: bool = False) -> None:
        now = self.clock()
        if self.tty:
            if force or now - self.shown >= REFRESH_S:
                self.stream.write("\r" + self.text() + "\033[K")
                self.stream.flush()
                self.shown = now
        elif force or now - self.last_plain >= PLAIN_EVERY_S:
            if self.stage < len(self.stages):
                self.stream.write(self.text() + "\n")
                self.stream.flush()
                self.lines += 1
            self.last_plain = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
