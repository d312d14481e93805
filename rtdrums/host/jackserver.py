"""A private JACK server on the dummy backend (no sound card): for tests and benchmarks.

Facts this relies on (see the test rig notes): libjack clients find the server through
JACK_DEFAULT_SERVER; JACK_NO_START_SERVER=1 stops them from starting another one; a unique
server name per run keeps parallel runs apart; `jack_wait --wait` returns 0 once it is up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from ctypes.util import find_library
from pathlib import Path

INSTALL_HINT = "apt-get install jackd2 libportaudio2"


def missing_tools() -> list[str]:
    """What is missing to run a JACK server with PortAudio on it (empty when all is there)."""
    missing = [t for t in ("jackd", "jack_wait", "jack_midi_dump") if not shutil.which(t)]
    if not find_library("portaudio"):
        missing.append("libportaudio2")
    return missing


class JackServer:
    """`jackd --name NAME -d dummy`, started and stopped; sets JACK_DEFAULT_SERVER for clients."""

    def __init__(self, name: str, rate: int = 48000, period: int = 128, capture: int = 2,
                 playback: int = 8, realtime: bool = False, log: str | os.PathLike | None = None):
        self.name, self.rate, self.period = name, rate, period
        self.args = ["jackd", "--realtime" if realtime else "--no-realtime", "--name", name,
                     "--port-max", "128", "-d", "dummy", "--rate", str(rate),
                     "--period", str(period), "--capture", str(capture),
                     "--playback", str(playback)]
        self.log = Path(log) if log else Path(tempfile.mkdtemp(prefix="jackd-")) / "jackd.log"
        self.proc: subprocess.Popen | None = None
        self._saved: dict[str, str | None] = {}

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process of this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self, timeout: float = 10.0) -> "JackServer":
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(self.args, stdout=f, stderr=subprocess.STDOUT,
                                         env={**self.env, "JACK_NO_AUDIO_RESERVATION": "1"})
        r = subprocess.run(["jack_wait", "--server", self.name, "--wait", "--timeout",
                            str(int(timeout))], capture_output=True, text=True, env=self.env)
        if r.returncode != 0 or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"jackd did not come up: {self.log.read_text()[-2000:]}")
        for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER"):
            self._saved[k] = os.environ.get(k)
        os.environ.update(JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()                   # SIGTERM: clean exit, frees /dev/shm
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved.clear()

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
