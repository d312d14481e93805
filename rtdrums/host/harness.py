"""A JACK client that plays a signal into the live host and records what comes back.

Used by the end-to-end test and the benchmark. It has audio outputs (to the host's inputs),
audio inputs (from the host's outputs) and a MIDI input (from the host's MIDI port). Every
received MIDI message is stamped with its JACK frame time, so latencies are exact in samples.
Each process cycle logs the JACK frame at which it started and the position of the played signal
it played from: a cycle lost in an xrun shifts the signal against the frame clock, and note
times are mapped back through that log (notes()), not through the take's start frame alone.
Needs the JACK-Client package (pip install JACK-Client).
"""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import threading
import time

import numpy as np

LIVE = [sys.executable, "-m", "rtdrums.cli", "live"]


def wait_ports(client, pattern: str, n: int = 1, timeout: float = 10.0, **filters) -> list[str]:
    """Names of the JACK ports matching pattern (and get_ports filters such as is_midi), once
    there are at least n: other clients register their ports asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        ports = [p.name for p in client.get_ports(pattern, **filters)]
        if len(ports) >= n:
            return ports
        if time.monotonic() > deadline:
            raise TimeoutError(f"JACK ports {pattern!r}: expected {n}, got {ports}")
        time.sleep(0.05)


class Harness:
    def __init__(self, name: str = "harness", n_out: int = 1, n_in: int = 5, midi: bool = True):
        import jack
        self.jack = jack
        self.client = jack.Client(name, no_start_server=True)
        self.name = self.client.name
        self.outs = [self.client.outports.register(f"out_{c}") for c in range(n_out)]
        self.ins = [self.client.inports.register(f"in_{c}") for c in range(n_in)]
        self.midi_in = self.client.midi_inports.register("midi_in") if midi else None
        self.rate = self.client.samplerate
        self.armed, self.done = threading.Event(), threading.Event()
        self.stim = np.zeros((0, n_out), np.float32)
        self.rec = np.zeros((0, n_in), np.float32)
        self.pos = 0
        self.start_frame = None
        self.cycle_frame = np.zeros(0, np.int64)      # per process cycle of the take: JACK frame,
        self.cycle_pos = np.zeros(0, np.int64)        # position in the played signal
        self.cycles = 0
        self.midi: list[tuple[int, bytes]] = []       # (JACK frame time, message)
        self.xruns = 0
        # a process callback is required: a connected client without one stalls the graph
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._on_xrun)
        self.client.activate()

    def _on_xrun(self, delayed_usecs) -> None:
        self.xruns += 1

    def _process(self, frames: int) -> None:
        ft = self.client.last_frame_time
        if self.midi_in is not None:
            for offset, data in self.midi_in.incoming_midi_events():
                self.midi.append((ft + offset, bytes(data)))
        if not self.armed.is_set() or self.done.is_set():
            for p in self.outs:
                p.get_array()[:] = 0
            return
        p = self.pos
        if p == 0:
            self.start_frame = ft
        if self.cycles < len(self.cycle_frame):
            self.cycle_frame[self.cycles] = ft
            self.cycle_pos[self.cycles] = p
            self.cycles += 1
        for c, port in enumerate(self.outs):
            chunk = self.stim[p:p + frames, c]
            buf = port.get_array()
            buf[:len(chunk)] = chunk
            buf[len(chunk):] = 0
        m = min(frames, len(self.rec) - p)
        for c, port in enumerate(self.ins):
            self.rec[p:p + m, c] = port.get_array()[:m]
        self.pos = p + frames
        if self.pos >= len(self.rec):
            self.done.set()

    def connect(self, src: str, dst: str) -> None:
        try:
            self.client.connect(src, dst)
        except self.jack.JackErrorCode:
            pass                                       # already connected

    def wire(self, host: str, n_in: int, out_channels: list[int], midi_port: str | None) -> None:
        """Harness out_c -> host:in_c, host:out_k -> harness in_i, host MIDI -> harness MIDI.

        PortAudio's own auto-connections of the host to system:* are removed first.
        """
        for port in self.client.get_ports(f"{host}:.*"):
            for other in self.client.get_all_connections(port):
                if other.name.startswith("system:"):
                    try:                    # JACK wants (source, destination)
                        self.client.disconnect(*((other, port) if port.is_input else (port, other)))
                    except self.jack.JackError:
                        pass
        for c in range(n_in):
            self.connect(self.outs[c % len(self.outs)].name, f"{host}:in_{c}")
        for i, k in enumerate(out_channels):
            self.connect(f"{host}:out_{k}", self.ins[i].name)
        if midi_port and self.midi_in is not None:
            self.connect(midi_port, self.midi_in.name)

    def play(self, stim: np.ndarray, extra_s: float = 0.5, timeout: float | None = None) -> np.ndarray:
        """Play stim (n,) or (n, n_out); returns the recorded inputs (n + extra, n_in)."""
        stim = np.asarray(stim, np.float32)
        if stim.ndim == 1:
            stim = stim[:, None]
        self.stim = np.zeros((len(stim), len(self.outs)), np.float32)
        self.stim[:, :stim.shape[1]] = stim
        self.rec = np.zeros((len(stim) + int(extra_s * self.rate), len(self.ins)), np.float32)
        self.pos, self.start_frame = 0, None
        n_cycles = len(self.rec) // max(1, self.client.blocksize) + 2
        self.cycle_frame, self.cycle_pos = np.zeros(n_cycles, np.int64), np.zeros(n_cycles, np.int64)
        self.cycles = 0
        self.done.clear()
        if timeout is None:
            timeout = 5 + 3 * len(self.rec) / self.rate
        # no full garbage collection inside the JACK callback during the take (see session.py)
        gc.collect()           # holds the interpreter lock for a while: may itself cause an xrun,
        gc.freeze()            # so xruns are counted from here on
        gc.disable()
        time.sleep(0.05)
        self.xruns = 0
        try:
            self.armed.set()
            ok = self.done.wait(timeout)
            self.armed.clear()
        finally:
            gc.enable()
        if not ok:
            raise TimeoutError("the harness did not finish playing (JACK graph stalled?)")
        return self.rec

    def notes(self, midi: list[tuple[int, bytes]] | None = None) -> list[tuple[int, int, int]]:
        """Note-ons received during the last take as (position in the played signal at the
        moment they arrived, note, velocity); midi: another client's received messages (JACK
        frame, bytes) to map the same way (default: this client's own)."""
        if self.start_frame is None or self.cycles == 0:
            return []
        frames, pos = self.cycle_frame[:self.cycles], self.cycle_pos[:self.cycles]
        out = []
        for ft, d in list(self.midi if midi is None else midi):
            if len(d) == 3 and d[0] & 0xF0 == 0x90 and d[2] > 0 and ft >= self.start_frame:
                c = int(np.searchsorted(frames, ft, side="right")) - 1
                out.append((int(pos[c] + ft - frames[c]), d[1], d[2]))
        return out

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class LiveProcess:
    """`rtdrums live` as a subprocess: started, waited for, interrupted; output collected."""

    READY = "rtdrums live: running"

    def __init__(self, args: list[str], env: dict, timeout: float = 180.0, cmd: list[str] = LIVE):
        # a cold Numba cache compiles the engine and the audio callback first: about a minute
        # each on a loaded 2-core machine. cmd: another program that prints READY (host.control)
        self.proc = subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self.err: list[str] = []
        self.ready = threading.Event()
        self.readers = [threading.Thread(target=self._read, args=a, daemon=True)
                        for a in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                for t in self.readers:
                    t.join(5)
                raise AssertionError(f"rtdrums live did not start (rc {self.proc.returncode}):\n"
                                     + self.output)

    def _read(self, stream, sink) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if line.startswith(self.READY):
                self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines + self.err)

    def stop(self, sig=signal.SIGINT, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"rtdrums live did not stop on {sig!r}:\n{self.output}")
        for t in self.readers:                 # let the readers take the last lines
            t.join(5)
        return rc
