"""The live part of a calibration: one take per drum recorded through a live session, the
player's answers, and the closing check with the new preset.

A take is an ordinary live session (host.session) on the current preset, recording into
PRESET_DIR/takes/<drum>/ with the recorder's ring and writer process, so a take is on disk as it
is played and Ctrl-C leaves it complete. While it records, the view reads the growing input.wav,
splits it into strokes as training will (rtdrums.training.calibration.analyse) and shows them with their
levels and warnings. Answers come from the keyboard on a terminal (Enter, r, s, q) or as lines on
stdin otherwise (empty = go on, next, redo, skip, quit), so that scripts can drive it.
"""

from __future__ import annotations

import os
import select
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..training.calibration import Step, analyse, db, fmt_db, take_triggers
from .config import LiveConfig
from .view import LiveView, _bar

WORDS = {"": "next", "n": "next", "next": "next", "ok": "next", "go": "next", "done": "next",
         "r": "redo", "redo": "redo", "s": "skip", "skip": "skip", "q": "quit", "quit": "quit",
         "stop": "quit"}
ANALYSE_S = 0.5          # how often the growing take is split into strokes


class Answers:
    """The player's answers: single keys on a terminal while a take records, else lines."""

    def __init__(self, stream=None, out=None):
        stream = stream or sys.stdin
        self.fd = stream.fileno()
        self.tty = os.isatty(self.fd)
        self.out = out or sys.stdout
        self.buf = b""
        self.eof = False
        self._saved = None

    def _fill(self, timeout: float | None) -> None:
        if self.eof:
            return
        if select.select([self.fd], [], [], timeout)[0]:
            data = os.read(self.fd, 4096)
            if data:
                self.buf += data
            else:
                self.eof = True

    def _word(self, text: str) -> str | None:
        w = WORDS.get(text.strip().lower())
        if w is None:
            self.out.write(f"  ? {text.strip()!r}: answer Enter (go on), redo, skip or quit\n")
            self.out.flush()
        return w

    def ask(self, prompt: str) -> str:
        """Wait for a line; 'next' at the end of input (a script that ran out of answers)."""
        self.out.write(prompt if self.tty else prompt.rstrip() + "\n")   # scripts read lines
        self.out.flush()
        while True:
            while b"\n" not in self.buf and not self.eof:
                self._fill(None)
            if b"\n" not in self.buf:
                self.buf = b""
                self.out.write("\n")
                return "next"
            line, _, self.buf = self.buf.partition(b"\n")
            w = self._word(line.decode(errors="replace"))
            if w:
                return w

    def poll(self) -> str | None:
        """An answer given while a take records, or None."""
        self._fill(0)
        if self.tty:
            while self.buf:
                ch, self.buf = self.buf[:1].decode(errors="replace"), self.buf[1:]
                w = WORDS.get("" if ch in "\r\n" else ch.lower())
                if w:
                    return w
            return None
        if b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            return self._word(line.decode(errors="replace"))
        return None

    def keys_mode(self) -> None:
        """On a terminal: keys without Enter, not echoed, while a take records."""
        if self.tty and self._saved is None:
            import termios
            import tty
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def line_mode(self) -> None:
        if self._saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


class TakeView(LiveView):
    """The take screen: the input's meter, the strokes found so far with their levels, the
    current preset's triggers and the warnings; stops the session on an answer."""

    def __init__(self, session, out, mode: str, step: Step, answers: Answers, channel: str,
                 max_seconds: float = 0.0):
        super().__init__(session, out, mode)
        self.step, self.answers, self.channel, self.max_seconds = step, answers, channel, max_seconds
        self.action = "next"
        self._shown_strokes = 0
        self._shown_warnings: set[str] = set()
        self._last_analysis = 0.0
        self.report = None

    def started(self) -> None:
        keys = "Enter = done, r = redo, s = skip, q = quit" if self.answers.tty else \
            "answer on stdin: Enter = done, redo, skip, quit"
        self._print(f"recording {self.step.label} into {self.s.recorder.folder}: play "
                    f"{self.step.strokes} strokes, {self.step.how} ({keys})")

    def _analyse(self):
        """The take so far (as far as the writer's last header update) split into strokes, with
        the current preset's triggers; None if nothing can be read yet."""
        import soundfile as sf
        folder = self.s.recorder.folder
        try:
            with sf.SoundFile(folder / "input.wav") as f:
                x = f.read(dtype="float32")
            triggers = take_triggers(folder)       # the writer updates it every 2 s
        except Exception:                          # not written yet, or being replaced
            return None
        return analyse(self.step, x, self.s.cfg.sample_rate, self.channel, triggers, final=False)

    def update(self) -> None:
        s = self.s
        answer = self.answers.poll()
        if answer is None and self.answers.eof and not self.answers.tty and not self.max_seconds:
            answer = "next"                    # a script that ran out of answers
        if answer is None and self.max_seconds and s.pos >= self.max_seconds * s.cfg.sample_rate:
            answer = "next"
        if answer is not None:
            self.action = answer
            s.stop_reason = answer
            s.stop_event.set()
            return
        peak = float(s.peaks[4])
        s.peaks[:] = 0
        now = time.monotonic()
        if now - self._last_analysis < ANALYSE_S:
            if self.mode == "full":
                self._draw_take(peak)
            return
        self._last_analysis = now
        rep = self._analyse()
        if rep is not None:
            self.report = rep
        if self.mode == "full":
            self._draw_take(peak)
        elif self.mode == "plain" and rep is not None:
            for k in range(self._shown_strokes, rep.strokes):
                self._print(f"  stroke {k + 1:2d} at {rep.starts[k]:6.2f} s: {fmt_db(rep.levels[k])}")
            self._shown_strokes = max(self._shown_strokes, rep.strokes)
            for w in rep.warnings:
                if w not in self._shown_warnings:
                    self._shown_warnings.add(w)
                    self._print(f"  warning: {w}")

    def _draw_take(self, peak: float) -> None:
        s, rep = self.s, self.report
        heard = " ".join(f"{d} {int(n)}" for d, n in zip(s.drum_names, s.hits))
        lines = [f" {self.step.label}: {self.step.strokes} strokes, {self.step.how}   "
                 f"[{s.pos / s.cfg.sample_rate:5.1f} s]",
                 f" input     |{_bar(peak)}| {db(peak) if peak > 0 else -120.0:6.1f} dBFS   "
                 f"current preset hears: {heard}"]
        if rep is not None:
            levels = " ".join(f"{v:.0f}" for v in rep.levels[-16:])
            lines.append(f" strokes   {rep.strokes:3d}   levels (dBFS): {levels}")
            lines += [f" ! {w}" for w in rep.warnings[:4]]
        lines.append(" Enter = done   r = redo   s = skip   q = quit (takes are kept)")
        self.redraw(lines)


class CheckView(LiveView):
    """The closing check: the live view of the new preset; any answer ends it. In plain mode a
    line with the trigger counts every second they change."""

    def __init__(self, session, out, mode: str, answers: Answers):
        super().__init__(session, out, mode)
        self.answers = answers
        self._last = None
        self._t = 0.0

    def started(self) -> None:
        self._print("check: play a groove; the new preset's triggers are shown live "
                    f"({'any key' if self.answers.tty else 'a line on stdin'} ends it)")

    def update(self) -> None:
        s = self.s
        if self.answers.poll() is not None:
            s.stop_reason = "answered"
            s.stop_event.set()
            return
        if self.mode == "full":
            super().update()
            return
        now = time.monotonic()
        counts = tuple(int(h) for h in s.hits)
        if now - self._t >= 1.0 and counts != self._last:
            self._t, self._last = now, counts
            self._print("  triggers: " + ", ".join(f"{d} {n}" for d, n in zip(s.drum_names, counts)))


def check_input(cfg: LiveConfig) -> str:
    """The input device's name, or a one-line error before the first prompt."""
    from . import audio
    sd = audio.load_sounddevice(cfg.client_name)
    dev = audio.find_device(sd, cfg.input_device, "input", cfg.host_api)
    audio.check_channels(dev, cfg.input_channels, "input")
    return dev["name"]


def record_take(cfg: LiveConfig, step: Step, folder: Path, answers: Answers, out,
                max_seconds: float = 0.0) -> tuple[str, Path | None, str]:
    """Record one take into a new session folder in `folder`. Returns (answer, session folder,
    stop reason); answer is next, redo, skip or quit (Ctrl-C and SIGTERM give quit)."""
    from .session import LiveSession

    session = LiveSession(replace(cfg, record=str(folder), midi=False, route={}), out)
    session.prepare()
    channel = f"input channel {'+'.join(map(str, cfg.input_channels))}"
    view = TakeView(session, out, cfg.view, step, answers, channel, max_seconds)
    answers.keys_mode()
    try:
        stats = session.run(view)
    finally:
        answers.line_mode()
    if view.mode == "full":
        out.write("\n")
    action = view.action if stats["stop_reason"] == view.action else \
        ("quit" if stats["stop_reason"] in ("Ctrl-C", "SIGTERM", "SIGHUP") else view.action)
    rec = stats["recording"]
    return action, Path(rec["folder"]) if rec else None, stats["stop_reason"]


def check_groove(cfg: LiveConfig, preset_dir: Path, seconds: float, answers: Answers, out) -> dict:
    """Run the new preset live for `seconds` (or until an answer); returns the session's stats."""
    from .session import LiveSession

    session = LiveSession(replace(cfg, preset=str(preset_dir), record=None, midi=False, route={},
                                  duration=seconds), out)
    session.prepare()
    view = CheckView(session, out, cfg.view, answers)
    answers.keys_mode()
    try:
        return session.run(view)
    finally:
        answers.line_mode()
