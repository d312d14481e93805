"""A groove take: the click played on the chosen output channels while the input is recorded,
with the pattern's step grid on the screen (`rtdrums calibrate --groove`).

The audio callback is compiled (a Numba @cfunc with PortAudio's PaStreamCallback signature, as
host.native): per block it copies the preallocated click into the click channels and the input
(mono, or the mean of a pair) into the preallocated take, and accumulates the input's peak and
clipped samples. It never allocates, locks, logs or does I/O. Its userData is the address of
one int64 array (CTL) holding the counters and the addresses of the click, take and meter
arrays, which the GrooveTake keeps alive while the stream runs. Python polls the position for
the view and writes the take after the stream stops (Ctrl-C included).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np
from numba import carray, cfunc, types
from numba.extending import intrinsic

from ..errors import UserError
from ..training.calibration import CLIP, db
from ..training.groove_pattern import Pattern, click_track, cursor, grid_rows, take_layout
from . import audio
from .view import LiveView, _bar

# CTL slots: the callback writes POS, CALLBACKS, the xrun counters and CLIPPED; the rest is set
# before the stream starts. CH0.. hold the 0-based click channels.
(POS, TOTAL, N_IN, N_OUT, IN0, IN1, CLICK_ADDR, TAKE_ADDR, METER_ADDR, CALLBACKS, IN_OVERFLOW,
 OUT_UNDERFLOW, CLIPPED, N_CLICK, CH0) = range(15)
MAX_CLICK_CHANNELS = 16
N_CTL = CH0 + MAX_CLICK_CHANNELS
PA_INPUT_OVERFLOW, PA_OUTPUT_UNDERFLOW = 0x2, 0x4


@intrinsic
def _pointer(typingctx, address):
    """An int64 address as a void pointer (for carray)."""
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(types.int64), codegen


def _callback(inp, outp, frames, time_info, status, user):
    ctl = carray(user, (N_CTL,), dtype=np.int64)
    if status & PA_INPUT_OVERFLOW:
        ctl[IN_OVERFLOW] += 1
    if status & PA_OUTPUT_UNDERFLOW:
        ctl[OUT_UNDERFLOW] += 1
    total, pos = ctl[TOTAL], ctl[POS]
    click = carray(_pointer(ctl[CLICK_ADDR]), (total,), dtype=np.float32)
    take = carray(_pointer(ctl[TAKE_ADDR]), (total,), dtype=np.float32)
    meter = carray(_pointer(ctl[METER_ADDR]), (2,), dtype=np.float32)   # since last read, all
    x = carray(inp, (frames, ctl[N_IN]), dtype=np.float32)
    out = carray(outp, (frames, ctl[N_OUT]), dtype=np.float32)
    c0, c1 = ctl[IN0], ctl[IN1]
    for i in range(frames):
        for k in range(ctl[N_OUT]):
            out[i, k] = 0.0
        p = pos + i
        if p >= total:
            continue
        v = x[i, c0] if c1 < 0 else np.float32(0.5) * (x[i, c0] + x[i, c1])
        if not (abs(v) < 1e30):                     # NaN or Inf: a broken input, not the take
            v = np.float32(0.0)
        take[p] = v
        a = abs(v)
        if a > meter[0]:
            meter[0] = a
        if a > meter[1]:
            meter[1] = a
        if a >= CLIP:
            ctl[CLIPPED] += 1
        for k in range(ctl[N_CLICK]):
            out[i, ctl[CH0 + k]] = click[p]
    ctl[POS] = pos + frames
    ctl[CALLBACKS] += 1
    return 0


_compiled = None


def compiled_callback():
    """The callback compiled once per process (cached on disk by Numba)."""
    global _compiled
    if _compiled is None:
        sig = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64,
                          types.voidptr)
        _compiled = cfunc(sig, cache=True, nogil=True)(_callback)
    return _compiled


@dataclass
class TakeResult:
    action: str                 # next (played through or Enter), redo, quit
    take: np.ndarray            # the recorded input, from the first click on
    latency_s: tuple[float, float]   # the stream's reported (input, output) latency
    seconds: float
    clipped: int
    xruns: tuple[int, int]
    stop_reason: str


class GrooveTake:
    """Open with `prepare()` (checks devices and channels: one-line errors), then `run()`."""

    def __init__(self, cfg, click_channels: list[int], pattern: Pattern, count_in_beats: int,
                 click_level_db: float, out_device: str | None = None):
        self.cfg, self.click_channels, self.pattern = cfg, click_channels, pattern
        self.count_in, self.level_db, self.out_device = count_in_beats, click_level_db, out_device

    def prepare(self) -> None:
        cfg = self.cfg
        sd = self.sd = audio.load_sounddevice(cfg.client_name)
        self.in_dev = audio.find_device(sd, cfg.input_device, "input", cfg.host_api)
        self.out_dev = audio.find_device(sd, self.out_device, "output",
                                         cfg.host_api or self.in_dev["hostapi_name"])
        audio.check_channels(self.in_dev, cfg.input_channels, "input")
        try:
            audio.check_channels(self.out_dev, self.click_channels, "output")
        except UserError as e:
            raise UserError(f"--click-channels: {e}") from None
        if len(self.click_channels) > MAX_CLICK_CHANNELS:
            raise UserError(f"--click-channels: at most {MAX_CLICK_CHANNELS} channels")
        self.n_in, self.n_out = max(cfg.input_channels), max(self.click_channels)
        audio.check_stream(sd, self.in_dev, self.n_in, self.out_dev, self.n_out, cfg.sample_rate,
                           cfg.block)
        rate = cfg.sample_rate
        self.start, self.total = take_layout(self.pattern, rate, self.count_in)
        self.click = click_track(self.pattern, rate, self.count_in, self.level_db)
        self.take = np.zeros(self.total, np.float32)
        self.meter = np.zeros(2, np.float32)
        self.ctl = np.zeros(N_CTL, np.int64)
        self.fn = compiled_callback()

    def _reset(self) -> None:
        c = self.ctl
        c[:] = 0
        c[TOTAL], c[N_IN], c[N_OUT] = self.total, self.n_in, self.n_out
        ch = [x - 1 for x in self.cfg.input_channels]
        c[IN0], c[IN1] = ch[0], (ch[1] if len(ch) == 2 else -1)
        c[CLICK_ADDR] = self.click.ctypes.data
        c[TAKE_ADDR] = self.take.ctypes.data
        c[METER_ADDR] = self.meter.ctypes.data
        c[N_CLICK] = len(self.click_channels)
        c[CH0:CH0 + len(self.click_channels)] = [x - 1 for x in self.click_channels]
        self.take[:] = 0
        self.meter[:] = 0

    def run(self, view) -> TakeResult:
        """Count-in, pattern and tail, or until the view answers (redo, quit, next) or Ctrl-C."""
        cfg, sd = self.cfg, self.sd
        self._reset()
        fn = sd._ffi.cast("PaStreamCallback *", self.fn.address)
        user = sd._ffi.cast("void *", self.ctl.ctypes.data)
        try:
            stream = sd._StreamBase("duplex", device=(self.in_dev["index"], self.out_dev["index"]),
                                    channels=(self.n_in, self.n_out), callback=fn, userdata=user,
                                    samplerate=cfg.sample_rate, blocksize=cfg.block, dtype="float32",
                                    latency="low")
        except sd.PortAudioError as e:
            raise UserError(f"could not open the audio stream on {self.in_dev['name']} / "
                            f"{self.out_dev['name']}: {e}") from None
        latency = tuple(float(v) for v in stream.latency)
        action, reason = "next", "played through"
        gc.collect()
        try:
            with stream:
                view.started(self, latency)
                while True:
                    time.sleep(view.interval)
                    if self.ctl[POS] >= self.total:
                        break
                    answer = view.update(self)
                    if answer is not None:
                        action, reason = answer, answer
                        break
                    if not stream.active:
                        action, reason = "quit", "the audio stream stopped"
                        break
        except KeyboardInterrupt:
            action, reason = "quit", "Ctrl-C"
        finally:
            stream.close()
        n = int(min(self.ctl[POS], self.total))
        return TakeResult(action, self.take[:n].copy(), latency, n / cfg.sample_rate,
                          int(self.ctl[CLIPPED]), (int(self.ctl[IN_OVERFLOW]), int(self.ctl[OUT_UNDERFLOW])),
                          reason)


class GrooveView(LiveView):
    """The take screen: the pattern's grid per drum with the current 16th marked, the bar and
    beat (or the count-in), the input's meter and peak. Plain mode prints the grid once and a
    line per bar with the peak so far. update() returns the player's answer or None."""

    def __init__(self, out, mode: str, answers, pattern: Pattern, count_in: int):
        super().__init__(None, out, mode)
        self.answers, self.p, self.count_in = answers, pattern, count_in
        self._shown_bar = -2

    def started(self, take: GrooveTake, latency: tuple[float, float]) -> None:
        self.take = take
        p = self.p
        keys = "r = redo, q = quit, Enter = stop here" if self.answers.tty else \
            "answer on stdin: redo, quit, Enter = stop here"
        self._print(f"groove take: {self.count_in} beats count-in, then {p.bars} bars at {p.bpm:g} bpm "
                    f"({keys}); latency in {1e3 * latency[0]:.1f} ms + out {1e3 * latency[1]:.1f} ms")
        if self.mode != "full":
            for label, cells in grid_rows(p):
                self._print(f"  {label:<7}|{cells}|")

    def _where(self, pos: int) -> tuple[int, int, float]:
        """(bar, beat) counted from 1 (bar 0 = the count-in) and seconds into the pattern."""
        rate = self.take.cfg.sample_rate
        s = (pos - self.take.start) / rate
        beat = int(np.floor(s / self.p.beat_s))
        return (beat // 4 + 1 if s >= 0 else 0), beat % 4 + 1, s

    def update(self, take: GrooveTake) -> str | None:
        answer = self.answers.poll()
        if answer is not None:
            return answer
        pos = int(take.ctl[POS])
        peak = float(take.meter[0])
        take.meter[0] = 0
        bar, beat, s = self._where(pos)
        level = f"{db(float(take.meter[1])):6.1f} dBFS" if take.meter[1] > 0 else "  -inf dBFS"
        if self.mode == "full":
            if s < -self.count_in * self.p.beat_s:
                where = "get ready"
            elif bar == 0:
                where = f"count-in {beat}"
            else:
                where = f"bar {bar} of {self.p.bars}, beat {beat}" if bar <= self.p.bars else "last hits ringing"
            lines = [f" play along: {self.p.bpm:g} bpm   [{where}]"]
            lines += [f" {label:<7}|{cells}|" for label, cells in grid_rows(self.p)]
            lines.append(f" {'':<7} {cursor(self.p, s)}")
            lines.append(f" input  |{_bar(peak)}| {db(peak) if peak > 0 else -120.0:6.1f} dBFS   "
                         f"peak so far {level}   clipped samples {int(take.ctl[CLIPPED])}")
            lines.append(" r = redo   q = quit (the take so far is kept)   Enter = stop here")
            self.redraw(lines)
        elif self.mode == "plain" and bar != self._shown_bar and bar <= self.p.bars:
            self._shown_bar = bar
            what = "count-in" if bar == 0 else f"bar {bar} of {self.p.bars}"
            self._print(f"  {what}: input peak so far {level}")
        return None
