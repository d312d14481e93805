"""CPU seconds, wall seconds and peak RSS of each stage of `rtdrums train`, run in this process.

    python -m rtdrums.evaluation.train_stage_profile train --kit DIR --out OUT [train options]

docs/training-speed.md has the measurements made with it. The stages: reading the kits' hits
(`--kit`: their parse and decode; --hits folders are read in the next row), then each stage of
the training's progress plan (rtdrums.training.train.training_plan), then writing the preset.
The RSS is sampled every 5 ms by a thread; each stage's peak is the highest sample from its start
to its end, its end the RSS when the next stage starts. The table goes to stderr.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident set, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class StageClock:
    """Rows (stage, CPU s, wall s, peak RSS, end RSS) of consecutive stages; peak from a sampler."""

    def __init__(self, first: str):
        self.rows: list[tuple[str, float, float, int, int]] = []
        self.name, self.cpu, self.wall = first, time.process_time(), time.perf_counter()
        self.peak, self._stop = rss(), threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def next(self, name: str) -> None:
        """Close the current stage and start `name`."""
        cpu, wall, now = time.process_time(), time.perf_counter(), rss()
        self.rows.append((self.name, cpu - self.cpu, wall - self.wall, max(self.peak, now), now))
        self.name, self.cpu, self.wall, self.peak = name, cpu, wall, now

    def stop(self) -> None:
        self.next("")
        self._stop.set()

    def table(self) -> str:
        out = [f"{'stage':34s} {'CPU s':>7s} {'wall s':>7s} {'peak GB':>8s} {'end GB':>7s}"]
        out += [f"{n:34s} {c:7.1f} {w:7.1f} {p / 1e9:8.2f} {e / 1e9:7.2f}" for n, c, w, p, e in self.rows]
        return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import rtdrums.commands.train as command
    from rtdrums import cli
    from rtdrums.progress import Progress

    clock = StageClock("reading kit hits")
    read_kits = command.kit_hit_sets

    def kit_hit_sets(*args, **kwargs):
        out = read_kits(*args, **kwargs)
        clock.next("learning templates")
        return out

    class StagedProgress(Progress):
        def __call__(self):
            before = self.stage
            super().__call__()
            if self.stage != before:
                clock.next(self.stages[self.stage].name if self.stage < len(self.stages) else "writing")

    command.kit_hit_sets, command.Progress = kit_hit_sets, StagedProgress
    try:
        code = cli.main(sys.argv[1:] if argv is None else argv)
    finally:
        command.kit_hit_sets, command.Progress = read_kits, Progress
    clock.stop()
    print(clock.table(), file=sys.stderr)
    print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9:.2f} GB", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
