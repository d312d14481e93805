"""Recording a live session: a preallocated shared ring filled by the audio callback, drained
to disk by a writer process.

The callback's `push` copies one block (the engine's input and its raw stems, plus the block's
trigger events) into the next free slot and returns; if the ring is full it drops the block and
counts it, it never waits. The writer is a separate process, not a thread: a thread would share
the interpreter lock with the audio callback, and on a loaded machine a descheduled writer
holding that lock made the callback miss its deadline (measured: xruns on every take). The ring
lives in a memory-mapped file both processes map (unlinked once both have it, so nothing leaks).

The writer writes every slot in order; a dropped block becomes a run of zeros in every file
(listed under "gaps" in session.json), so the files stay sample-aligned. Session folder:
  input.wav       the mono signal the engine was given (the mix of the chosen input channels)
  kick.wav ...    each stem exactly as the engine produced it, NOT shifted: stems[t] belongs to
                  input[t - stem_latency_samples] (the value is in session.json)
  triggers.csv    the same columns as `rtdrums separate`; times in seconds of input.wav
  triggers.mid    note-ons at the onsets, GM drum channel
  session.json    settings, latencies, counters, status
WAV headers are rewritten every second, so even a killed host leaves playable files (the
writer also finishes the files if the host dies). On SIGINT/SIGTERM everything is closed
properly. If a write fails (disk full) recording stops with a message, the files written so far
are closed, and audio and MIDI go on.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..events import EVENT_DTYPE, write_csv, write_midi

FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}
MAX_EVENTS_PER_BLOCK = 32
JSON_RESERVE = 16384                      # bytes session.json starts with (see write_json)
_SFC_UPDATE_HEADER_NOW = 0x1060           # libsndfile: rewrite the header with the current length
# control words shared by the callback (writes HEAD, DROPPED) and the writer (the rest:
# TAIL, and FRAMES and N_EVENTS written so far, which the host shows)
HEAD, TAIL, DROPPED, FRAMES, ACTIVE, N_EVENTS = range(6)


def new_session_folder(parent: str | os.PathLike) -> Path:
    """parent/YYYYmmdd-HHMMSS (with -2, -3 ... if taken), created."""
    parent = Path(parent)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        p = parent / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            p.mkdir(parents=True)
            return p
        except FileExistsError:
            continue
    raise OSError(f"cannot create a session folder in {parent}")


class _Ring:
    """The shared arrays, laid out in one memory-mapped file."""

    def __init__(self, path: str, slots: int, block: int, channels: int, create: bool):
        shapes = [("ctl", np.int64, (8,)), ("pos", np.int64, (slots,)),
                  ("nframes", np.int32, (slots,)), ("nev", np.int32, (slots,)),
                  ("ev", EVENT_DTYPE, (slots, MAX_EVENTS_PER_BLOCK)),
                  ("data", np.float32, (slots, block, channels))]
        offset, layout = 0, []
        for name, dt, shape in shapes:
            offset = (offset + 63) // 64 * 64
            layout.append((name, dt, shape, offset))
            offset += int(np.prod(shape)) * np.dtype(dt).itemsize
        if create:
            with open(path, "wb") as f:
                f.truncate(offset)
        self._mm = np.memmap(path, np.uint8, "r+", shape=(offset,))
        for name, dt, shape, off in layout:
            n = int(np.prod(shape)) * np.dtype(dt).itemsize
            setattr(self, name, self._mm[off:off + n].view(dt).reshape(shape))


class Recorder:
    """Shared ring + writer process. `push` is for the audio callback; the rest for the host."""

    def __init__(self, folder: str | os.PathLike, sample_rate: int, block: int,
                 stem_names: tuple[str, ...], drum_names: tuple[str, ...], stem_latency: int,
                 fmt: str = "wav", buffer_s: float = 10.0, info: dict | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"recording format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.folder = Path(folder)
        self.params = dict(folder=str(folder), sample_rate=int(sample_rate), block=int(block),
                           stem_names=list(stem_names), drum_names=list(drum_names),
                           stem_latency=int(stem_latency), fmt=fmt, info=dict(info or {}))
        self.slots = max(16, math.ceil(buffer_s * sample_rate / block))
        shm_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, self._path = tempfile.mkstemp(prefix="rtdrums-ring-", dir=shm_dir)
        os.close(fd)
        self.ring = _Ring(self._path, self.slots, block, 1 + len(stem_names), create=True)
        r = self.ring
        self._ctl, self._pos, self._nframes, self._nev, self._ev, self._data = \
            r.ctl, r.pos, r.nframes, r.nev, r.ev, r.data
        self.head = 0
        self._proc = None
        self._buf = ""
        self.error: str | None = None

    # -- audio callback ------------------------------------------------------------------------
    def push(self, mono, stems, events, n_events: int, pos: int) -> None:
        """Copy one block (n frames of input and stems, the block's events) into the ring."""
        ctl = self._ctl
        if not ctl[ACTIVE]:
            return
        h = self.head
        if h - ctl[TAIL] >= self.slots:
            ctl[DROPPED] += 1
            return
        j = h % self.slots
        n = mono.shape[0]
        d = self._data[j]
        d[:n, 0] = mono
        d[:n, 1:] = stems
        self._nframes[j] = n
        self._pos[j] = pos
        k = n_events if n_events <= MAX_EVENTS_PER_BLOCK else MAX_EVENTS_PER_BLOCK
        if k:
            self._ev[j, :k] = events[:k]
        self._nev[j] = k
        self.head = h + 1
        ctl[HEAD] = h + 1

    # -- host side -----------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return int(self._ctl[DROPPED])

    @property
    def frames(self) -> int:
        """Samples written to every file so far."""
        return int(self._ctl[FRAMES])

    @property
    def events(self) -> int:
        """Trigger events taken from the ring so far."""
        return int(self._ctl[N_EVENTS])

    def start(self, timeout: float = 30.0) -> None:
        """Start the writer; it opens the files. Raises OSError if it cannot."""
        args = json.dumps({"path": self._path, "slots": self.slots, "params": self.params,
                           "parent": os.getpid()})
        self._proc = subprocess.Popen([sys.executable, "-m", "rtdrums.host.recorder", args],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      start_new_session=True)   # Ctrl-C is for the host only
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._buf = ""
        deadline = time.monotonic() + timeout
        msg = None
        while msg is None and time.monotonic() < deadline and self._proc.poll() is None:
            msgs = self._read()
            msg = msgs[0] if msgs else None
            if msg is None:
                time.sleep(0.02)
        msg = msg or (self._read() or [None])[0]
        try:
            os.unlink(self._path)                # both sides have it mapped now
        except OSError:
            pass
        if msg is None or msg[0] != "ready":
            self._proc.kill()
            self._proc.wait()
            self._proc = None
            raise OSError(msg[1] if msg else "the recording process did not start")
        self._ctl[ACTIVE] = 1

    def _read(self) -> list:
        try:
            while True:
                chunk = os.read(self._proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self._buf += chunk.decode()
        except (BlockingIOError, OSError, ValueError):
            pass
        lines = self._buf.split("\n")
        self._buf = lines.pop()
        return [json.loads(ln) for ln in lines if ln.strip()]

    def poll(self) -> str | None:
        """Take messages from the writer (call from the host's main loop); returns the error."""
        if self._proc is not None:
            for kind, msg in self._read():
                if kind == "error":
                    self.error = msg
                elif kind == "done":
                    self.error = msg.get("error") or self.error
        return self.error

    def stop(self, extra: dict | None = None, timeout: float = 60.0) -> None:
        """Let the writer drain the ring, close every file, write triggers and session.json."""
        self._ctl[ACTIVE] = 0
        if self._proc is None:
            return
        try:
            self._proc.stdin.write((json.dumps(extra or {}) + "\n").encode())
            self._proc.stdin.close()
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.02)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
            self.error = self.error or "the recording process did not finish in time"
        self.poll()
        self._proc = None
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            os.unlink(self._path)
        except OSError:
            pass


# -- the writer process --------------------------------------------------------------------------
def _update_header(f) -> None:
    try:
        import soundfile as sf
        sf._snd.sf_command(f._file, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)
    except Exception:
        pass


def _send(kind: str, msg) -> None:
    try:
        sys.stdout.write(json.dumps([kind, msg]) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _writer_main(path: str, slots: int, params: dict, parent_pid: int) -> None:
    """The writer process: `python -m rtdrums.host.recorder ARGS`. Stops on a line on stdin
    (the JSON object of extra session.json entries) or when the host dies."""
    for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if s is not None:
            signal.signal(s, signal.SIG_IGN)
    w = _Writer(path, slots, params)
    try:
        w.open()
    except Exception as e:
        _send("error", f"{type(e).__name__}: {e}")
        return
    _send("ready", None)
    stdin = sys.stdin.fileno()
    extra: dict = {}
    last_header = last_triggers = time.monotonic()
    written_events = 0
    while True:
        stopping = False
        if select.select([stdin], [], [], 0.05)[0]:
            line = sys.stdin.readline()
            try:
                extra = json.loads(line) if line.strip() else {}
            except ValueError:
                extra = {}
            stopping = True
        elif os.getppid() != parent_pid:        # the host died: finish the files
            stopping = True
        if w.error is None:
            try:
                w.drain()
                now = time.monotonic()
                if now - last_header > 1.0:
                    w.update_headers()
                    last_header = now
                if now - last_triggers > 2.0 and w.n_events != written_events:
                    w.write_triggers()
                    written_events, last_triggers = w.n_events, now
            except Exception as e:              # disk full, I/O error: stop recording only
                w.fail(e)
                _send("error", w.error)
        if stopping:
            break
    w.ctl[ACTIVE] = 0
    if w.error is None:
        try:
            w.drain()
        except Exception as e:
            w.fail(e)
    w.extra.update(extra)
    w.close()
    _send("done", {"error": w.error, "frames": w.frames, "gaps": w.gaps, "events": w.n_events})


class _Writer:
    def __init__(self, path: str, slots: int, params: dict):
        p = params
        self.folder = Path(p["folder"])
        self.sr, self.block, self.fmt = p["sample_rate"], p["block"], p["fmt"]
        self.stem_names, self.drum_names = tuple(p["stem_names"]), tuple(p["drum_names"])
        self.stem_latency, self.info = p["stem_latency"], p["info"]
        self.slots = slots
        r = _Ring(path, slots, self.block, 1 + len(self.stem_names), create=False)
        self.ctl, self.pos, self.nframes, self.nev, self.ev, self.data = \
            r.ctl, r.pos, r.nframes, r.nev, r.ev, r.data
        self.frames = 0
        self.gaps: list[list[int]] = []
        self.events: list[np.ndarray] = []
        self.n_events = 0
        self.error: str | None = None
        self.extra: dict = {}
        self.files = []

    @property
    def paths(self) -> dict[str, Path]:
        p = {"input": self.folder / f"input.{self.fmt}"}
        p.update({s: self.folder / f"{s}.{self.fmt}" for s in self.stem_names})
        return p

    def open(self) -> None:
        import soundfile as sf
        self.folder.mkdir(parents=True, exist_ok=True)
        container, subtype = FORMATS[self.fmt]
        self.files = [sf.SoundFile(p, "w", self.sr, 1, subtype, format=container)
                      for p in self.paths.values()]
        self.started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.write_json("recording")

    def _write(self, d: np.ndarray) -> None:
        for c, f in enumerate(self.files):
            f.write(np.ascontiguousarray(d[:, c]))
        self.frames += len(d)
        self.ctl[FRAMES] = self.frames

    def drain(self) -> None:
        t, h = int(self.ctl[TAIL]), int(self.ctl[HEAD])
        while t < h:
            j = t % self.slots
            # common case: a run of full, consecutive blocks without wrap -> one write per file
            k = min(h - t, self.slots - j)
            pos, nfr = self.pos[j:j + k], self.nframes[j:j + k]
            if not (int(pos[0]) == self.frames and np.all(nfr == self.block)
                    and np.all(np.diff(pos) == self.block)):
                k = 1
                start, n = int(pos[0]), int(nfr[0])
                if start > self.frames:          # blocks were dropped: keep files aligned
                    gap = start - self.frames
                    self.gaps.append([self.frames, gap])
                    self._write(np.zeros((gap, self.data.shape[2]), np.float32))
                self._write(self.data[j, :n])
            else:
                self._write(self.data[j:j + k].reshape(-1, self.data.shape[2]))
            ne = self.nev[j:j + k]
            for i in np.flatnonzero(ne):
                self.events.append(self.ev[j + i, :ne[i]].copy())
                self.n_events += int(ne[i])
            self.ctl[N_EVENTS] = self.n_events
            t += k
            self.ctl[TAIL] = t

    def update_headers(self) -> None:
        for f in self.files:
            _update_header(f)

    def fail(self, e: Exception) -> None:
        try:
            st = os.statvfs(self.folder)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = -1
        detail = str(e) or ("short write" if isinstance(e, AssertionError) else type(e).__name__)
        why = "disk full" if 0 <= free < (1 << 20) else f"write failed ({detail})"
        self.error = (f"recording stopped at {self.frames / self.sr:.1f} s: {why}; "
                      f"audio and MIDI go on")
        self.ctl[ACTIVE] = 0
        self.close()

    def all_events(self) -> np.ndarray:
        return np.concatenate(self.events) if self.events else np.zeros(0, EVENT_DTYPE)

    def write_triggers(self) -> None:
        ev = self.all_events()
        write_csv(self.folder / "triggers.csv", ev, self.sr, self.drum_names)
        write_midi(self.folder / "triggers.mid", ev, self.sr)

    def close(self) -> None:
        for f in self.files:
            try:
                f.close()
            except Exception:
                pass
        self.files = []
        for step in (self.write_triggers,
                     lambda: self.write_json("complete" if self.error is None else self.error)):
            try:
                step()
            except Exception as e:
                if self.error is None:
                    self.error = f"recording could not be finished: {type(e).__name__}: {e}"

    def write_json(self, status: str) -> None:
        doc = {
            "format": "rtdrums-session", "version": 1, "status": status,
            "started": getattr(self, "started", None),
            "sample_rate": self.sr, "block": self.block,
            "stem_latency_samples": self.stem_latency,
            "alignment": "stems are recorded as the engine produced them: stem sample t belongs "
                         "to input sample t - stem_latency_samples",
            "files": {k: v.name for k, v in self.paths.items()},
            "triggers": {"csv": "triggers.csv", "midi": "triggers.mid"},
            "drum_names": list(self.drum_names),
            "frames": self.frames, "duration_s": round(self.frames / self.sr, 6),
            "events": self.n_events, "dropped_blocks": int(self.ctl[DROPPED]), "gaps": self.gaps,
            **self.info, **self.extra,
        }
        text = json.dumps(doc, indent=2) + "\n"
        path, tmp = self.folder / "session.json", self.folder / "session.json.part"
        if status == "recording":                # reserve room for the final rewrite: on a
            text += " " * max(0, JSON_RESERVE - len(text))   # full disk that rewrite is in place
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            with open(path, "r+") as f:          # overwrite the reserved bytes: no new blocks
                f.write(text)
                f.truncate()


if __name__ == "__main__":
    _a = json.loads(sys.argv[1])
    _writer_main(_a["path"], _a["slots"], _a["params"], _a["parent"])
