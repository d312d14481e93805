"""MIDI output: backends (JACK, ALSA), ports, and the sender that turns engine events into notes.

A trigger becomes a note-on on the GM drum channel and, NOTE_LENGTH_S later, a note-off (drum
samplers ignore it, but a balanced stream keeps everything else happy). Two sending paths:
  'callback'  rtmidi's send_message straight from the audio callback (with JACK this writes a
              lock-free ring that rtmidi's own JACK client drains every period);
  'thread'    the callback puts notes in a preallocated ring and wakes a sender thread through
              a pipe; the thread calls send_message.
docs/measurements.md ("Live measurements") gives the measurement that chose the default (see host.bench).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np

from ..errors import UserError
from ..events import MIDI_CHANNEL, NOTE_LENGTH_S

BACKENDS = ("jack", "alsa")
DEFAULT_PATH = "callback"
HEAD, TAIL, POS, NEXT_OFF = range(4)       # NoteSender.ctl: the ring's indices, the block-end
                                           # position and the earliest pending note-off


def _rtmidi():
    import rtmidi
    return rtmidi


def _api(backend: str) -> int:
    rtmidi = _rtmidi()
    return {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}[backend]


def backend_problem(backend: str) -> str | None:
    """Why `backend` cannot be used here (None when it can). Tries nothing that prints noise."""
    rtmidi = _rtmidi()
    if backend not in BACKENDS:
        return f"unknown MIDI backend {backend!r} (use {' or '.join(BACKENDS)})"
    if _api(backend) not in rtmidi.get_compiled_api():
        return f"python-rtmidi was built without {backend.upper()} support"
    if backend == "alsa" and not os.path.exists("/dev/snd/seq"):
        return "ALSA sequencer unavailable (/dev/snd/seq missing: no sound driver loaded)"
    return None


@contextlib.contextmanager
def quiet_stderr():
    """Silence C libraries (libjack, libasound) that print to fd 2 while a backend is probed."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_client(backend: str, client_name: str):
    """An rtmidi MidiOut on `backend`, or UserError with the reason and the way out."""
    problem = backend_problem(backend)
    rtmidi = _rtmidi()
    if problem is None:
        try:
            with quiet_stderr():
                return rtmidi.MidiOut(_api(backend), name=client_name)
        except rtmidi.RtMidiError as e:
            msg = str(e)
            if backend == "jack":
                problem = "no JACK server is running (start jackd)" \
                    if "not running" in msg.lower() else f"JACK MIDI failed: {msg}"
            else:
                problem = f"ALSA sequencer unavailable: {msg}"
    other = [b for b in BACKENDS if b != backend][0]
    raise UserError(f"MIDI backend {backend.upper()} unavailable: {problem}; "
                    f"use --midi-backend {other}, or --no-midi to run without MIDI")


def list_ports(backend: str) -> tuple[list[str], str | None]:
    """(MIDI input ports we could send to, problem or None)."""
    try:
        mo = open_client(backend, "rtdrums-devices")
    except UserError as e:
        return [], str(e).split(" unavailable: ", 1)[-1].split("; use")[0]
    try:
        return list(mo.get_ports()), None
    finally:
        mo.delete()


class MidiOutput:
    """An open output: a virtual port (port=None) or a connection to an existing port."""

    def __init__(self, backend: str, port: str | None = None, client_name: str = "rtdrums-midi",
                 port_name: str = "out"):
        self.backend = backend
        self.out = open_client(backend, client_name)
        if port:
            ports = self.out.get_ports()
            hits = [i for i, p in enumerate(ports) if p == port] or \
                   [i for i, p in enumerate(ports) if port.lower() in p.lower()]
            if not hits:
                self.out.delete()
                raise UserError(f"no {backend.upper()} MIDI port matches {port!r}; ports: "
                                + (", ".join(ports) or "none") + " (omit --midi-port for a virtual port)")
            self.out.open_port(hits[0], port_name)
            self.description = f"{ports[hits[0]]} ({backend.upper()})"
        else:
            self.out.open_virtual_port(port_name)
            self.description = f"virtual port {client_name}:{port_name} ({backend.upper()})"
        self.send = self.out.send_message

    def close(self) -> None:
        try:
            self.out.close_port()
        finally:
            self.out.delete()


class NoteSender:
    """Sends engine events as note-on/off. `on_block` runs in the audio callback.

    send: a callable taking a 3-byte message (MidiOutput.send); path: 'callback' or 'thread'.
    Counters (read by other threads): sent (note-ons), offs, errors.
    """

    RING = 1024

    def __init__(self, send, sample_rate: int, path: str = DEFAULT_PATH,
                 channel: int = MIDI_CHANNEL, note_length_s: float = NOTE_LENGTH_S):
        if path not in ("callback", "thread"):
            raise ValueError(f"MIDI path must be 'callback' or 'thread', got {path!r}")
        self._send, self.path = send, path
        self.on_status, self.off_status = 0x90 | channel, 0x80 | channel
        self.note_len = max(1, int(round(note_length_s * sample_rate)))
        self.off_due = np.full(128, -1, np.int64)    # stream position of each pending note-off
        self.next_off = np.iinfo(np.int64).max
        self.sent = self.offs = self.errors = 0
        # thread path: SPSC ring of (note, velocity, position, perf_counter_ns at hand-off),
        # written by the audio callback only (the Python one or the compiled one in host.native)
        self.ring = np.zeros((self.RING, 4), np.int64)
        self.ctl = np.zeros(4, np.int64)              # HEAD, TAIL, POS, NEXT_OFF (see below)
        self.ctl[NEXT_OFF] = np.iinfo(np.int64).max
        self.handoff_ns = np.zeros(4096, np.int64)     # thread path: hand-off to send, per note
        self.handoffs = 0
        self.ring_full = 0
        self._thread = None
        if path == "thread":
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._wfd, False)
            self._running = True
            self._thread = threading.Thread(target=self._loop, name="rtdrums-midi", daemon=True)
            self._thread.start()

    # -- shared by both paths (runs in whichever thread sends) ---------------------------------
    def _emit(self, note: int, vel: int, pos: int) -> None:
        try:
            if self.off_due[note] >= 0:                  # still sounding: close it first
                self._send((self.off_status, note, 0))
                self.offs += 1
            self._send((self.on_status, note, vel))
            self.sent += 1
        except Exception:
            self.errors += 1
        due = pos + self.note_len
        self.off_due[note] = due
        if due < self.next_off:
            self.next_off = due
            self.ctl[NEXT_OFF] = due

    def _offs(self, pos: int) -> None:
        nxt = np.iinfo(np.int64).max
        for note in np.flatnonzero(self.off_due >= 0):
            due = self.off_due[note]
            if due <= pos:
                try:
                    self._send((self.off_status, int(note), 0))
                    self.offs += 1
                except Exception:
                    self.errors += 1
                self.off_due[note] = -1
            elif due < nxt:
                nxt = due
        self.next_off = nxt
        self.ctl[NEXT_OFF] = nxt

    # -- the audio callback side ---------------------------------------------------------------
    def on_block(self, events, n: int, pos: int) -> None:
        """Called once per block with the block's events (first n rows) and the block-end position."""
        if self.path == "callback":
            if self.next_off <= pos:
                self._offs(pos)
            for i in range(n):
                self._emit(int(events[i]["note"]), int(events[i]["velocity"]), pos)
            return
        if n == 0 and self.next_off > pos:
            return
        ring, ctl = self.ring, self.ctl
        for i in range(n):
            h = ctl[HEAD]
            if h - ctl[TAIL] >= self.RING:
                self.ring_full += 1
                continue
            r = ring[h % self.RING]
            r[0], r[1], r[2] = events[i]["note"], events[i]["velocity"], pos
            r[3] = time.perf_counter_ns()
            ctl[HEAD] = h + 1
        ctl[POS] = pos
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._wfd, b"\1")
        except (BlockingIOError, OSError):
            pass

    # -- the thread path -----------------------------------------------------------------------
    def _loop(self) -> None:
        # woken once per block with notes: on a busy machine a normal-priority thread can wait
        # whole periods for a core; the lowest real-time priority where allowed (as the main
        # thread gets, see session._raise_main_thread)
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))   # this thread only
        except (OSError, AttributeError):
            pass
        while self._running:
            try:
                os.read(self._rfd, 4096)
            except OSError:
                return
            ring, ctl = self.ring, self.ctl
            t, h = int(ctl[TAIL]), int(ctl[HEAD])
            while t < h:
                note, vel, pos, t_ns = ring[t % self.RING]
                self._emit(int(note), int(vel), int(pos))
                self.handoff_ns[self.handoffs % len(self.handoff_ns)] = time.perf_counter_ns() - t_ns
                self.handoffs += 1
                t += 1
            ctl[TAIL] = t
            if self.next_off <= ctl[POS]:
                self._offs(int(ctl[POS]))

    def handoff_stats(self) -> dict | None:
        """Thread path: time from the callback's hand-off to send_message (ms); None otherwise."""
        n = min(self.handoffs, len(self.handoff_ns))
        if self.path != "thread" or n == 0:
            return None
        t = np.sort(self.handoff_ns[:n]) / 1e6
        return {"notes": n, "median_ms": round(float(t[n // 2]), 4),
                "p99_ms": round(float(t[min(n - 1, int(0.99 * n))]), 4),
                "max_ms": round(float(t[-1]), 4)}

    def close(self, all_off: bool = True) -> None:
        """Stop the thread (if any) and send the pending note-offs."""
        if self._thread is not None:
            self._running = False
            try:
                os.write(self._wfd, b"\1")
            except OSError:
                pass
            self._thread.join(timeout=2)
            os.close(self._rfd)
            os.close(self._wfd)
            self._thread = None
        if all_off:
            self._offs(np.iinfo(np.int64).max - 1)
