"""pytest plugin: a real JACK server (dummy backend, no sound card) and helpers to drive
`rtdrums live` on it. Loaded as a plugin by tests/conftest.py.

Without jackd2 / libportaudio2 / JACK-Client the JACK tests skip with the exact install command;
with CI=true they fail instead, so CI cannot go green without running them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rtdrums.host.harness import LiveProcess, wait_ports  # noqa: F401  (re-exported for the tests)
from rtdrums.host.jackserver import INSTALL_HINT, JackServer, missing_tools

SR = 48000
# The server runs 1024-frame periods and the host 128 (or 64) sample blocks: PortAudio calls
# the callback 8 (16) times per period. Measured on a 2-core machine shared with other heavy
# processes: with 128-frame periods most 12 s takes had JACK xruns even with SCHED_FIFO (the
# Python clients, host and harness alike, wait for their interpreter lock); with 512 and 1024
# many 4-6 s takes were clean. The period-sized latency numbers come from rtdrums.host.bench,
# which runs period == block.
PERIOD = 1024
DEVICES = [sys.executable, "-m", "rtdrums.cli", "devices"]


def _unavailable(why: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the JACK tests cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    missing = missing_tools()
    if missing:
        _unavailable(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    try:
        import jack  # noqa: F401
    except Exception:
        _unavailable("missing the JACK-Client Python package: pip install JACK-Client")
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    server = JackServer(f"rtdrums-test-{os.getpid()}", SR, PERIOD, capture=2, playback=8, log=log,
                        realtime=os.environ.get("RTDRUMS_JACK_RT", "1") == "1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_preset(fixture_preset_dir):
    """Folder of the preset trained from the tiny fixture kit (conftest's fixture_preset), learned
    trigger included: what `rtdrums train --kit` gives a drummer."""
    return fixture_preset_dir


@pytest.fixture
def harness(jack_server):
    from rtdrums.host.harness import Harness
    h = Harness("harness", n_out=2, n_in=5)
    yield h
    h.close()


class MidiDump:
    """jack_midi_dump as an independent MIDI receiver; parses its note-ons."""

    LINE = re.compile(r"note on\s+\(channel\s+(\d+)\):\s+pitch\s+(\d+),\s+velocity\s+(\d+)")

    def __init__(self, name: str = "mididump"):
        self.name = name
        self.proc = subprocess.Popen(["jack_midi_dump", name], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def port(self, client, timeout: float = 5.0) -> str:
        return wait_ports(client, f"{self.name}:.*", 1, timeout, is_midi=True, is_input=True)[0]

    def stop(self) -> list[tuple[int, int]]:
        """(note, velocity) of every note-on it printed."""
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        return [(int(m[2]), int(m[3])) for m in self.LINE.finditer(out) if int(m[3]) > 0]


def find_take(recorded: np.ndarray, stim: np.ndarray) -> list[int]:
    """Every offset p with recorded[p:p+len(stim)] == stim exactly."""
    k0 = int(np.flatnonzero(np.abs(stim) > 1e-3)[0])
    cands = np.flatnonzero(recorded == stim[k0]) - k0
    return [int(p) for p in cands
            if 0 <= p and p + len(stim) <= len(recorded)
            and np.array_equal(recorded[p:p + len(stim)], stim)]


def play_undisturbed(harness, stim: np.ndarray, takes: int, extra_s: float = 0.3) -> np.ndarray:
    """What the host sent back for stim, from the first of up to `takes` plays without a JACK xrun
    (on a busy machine the rig itself drops periods now and then)."""
    for _ in range(takes):
        captured = harness.play(stim, extra_s=extra_s)
        if harness.xruns == 0:
            return captured
    pytest.fail(f"{takes} takes in a row were disturbed by JACK xruns")

