"""The terminal view of a live session and the summary printed at the end.

'full' (default on a terminal) redraws a small panel ten times a second: a meter per source
with its output channels, a flash with the velocity for each trigger, CPU load, xruns, dropped
recorder blocks, MIDI notes sent and the latency. A source with an effect chain is marked 'fx':
its meter shows the level after the chain. 'plain' (default when the output is not a
terminal) prints one status line every 5 s; 'off' prints only the start line and the summary.
"""

from __future__ import annotations

import math
import shutil
import time

from .config import SOURCES

FLASH_S = 0.15
METER_W = 24


def _db(x: float) -> float:
    return 20 * math.log10(x) if x > 1e-6 else -120.0


def _bar(peak: float, width: int = METER_W) -> str:
    frac = min(1.0, max(0.0, (_db(peak) + 60) / 60))        # -60..0 dBFS
    n = int(round(frac * width))
    return "#" * n + "." * (width - n)


def _hms(s: float) -> str:
    h, r = divmod(int(s), 3600)
    return f"{h:d}:{r // 60:02d}:{r % 60:02d}"


class LiveView:
    def __init__(self, session, out, mode: str = "auto"):
        if mode == "auto":
            mode = "full" if getattr(out, "isatty", lambda: False)() else "plain"
        self.s, self.out, self.mode = session, out, mode
        self.interval = 0.1 if mode == "full" else 0.25
        self._lines = 0
        self._last_plain = 0.0

    def _print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def header(self) -> str:
        s = self.s
        lat = s.latency()
        chans = "+".join(map(str, s.cfg.input_channels))
        midi = s.midi_out.description if s.midi_out else "off"
        rec = str(s.recorder.folder) if s.recorder else "off"
        return (f"rtdrums live: running  {s.cfg.sample_rate} Hz, block {s.cfg.block}  "
                f"in: {s.in_dev['name']} ch {chans}  out: {s.out_dev['name']}  MIDI: {midi}  "
                f"recording: {rec}  latency {lat['total_ms']:.1f} ms "
                f"(stems {lat['stems_ms']:.1f} + block {lat['block_ms']:.1f} + "
                f"interface {lat['interface_ms']:.1f})")

    def started(self) -> None:
        self._print(self.header())
        self._print("Ctrl-C stops and prints a summary.")

    def update(self) -> None:
        if self.mode == "off":
            return
        s = self.s
        peaks = [float(p) for p in s.peaks]
        s.peaks[:] = 0                           # the callback max-accumulates between updates
        if self.mode == "plain":
            now = time.monotonic()
            if now - self._last_plain < 5.0:
                return
            self._last_plain = now
            self._print(self.status_line())
            return
        self._draw(peaks)

    def status_line(self) -> str:
        s = self.s
        st = s.stats(recent=2048)
        rec = st["recording"]
        hits = " ".join(f"{d} {n}" for d, n in st["hits"].items())
        line = (f"[{_hms(st['seconds'])}] hits: {hits} | MIDI {st['midi_sent']} | CPU "
                f"{100 * st['cpu_load']:.0f}% | xruns {st['input_overflows']}/"
                f"{st['output_underflows']}")
        if rec:
            line += f" | rec dropped {rec['dropped_blocks']}"
            if rec["error"]:
                line += f" | {rec['error']}"
        return line

    def _draw(self, peaks) -> None:
        s = self.s
        width = shutil.get_terminal_size((100, 20)).columns
        sr = s.cfg.sample_rate
        lines = []
        outs = {src: [] for src in SOURCES}
        for src, chans in s.route.items():
            outs[src] += chans
        for i, src in enumerate(SOURCES):
            if src == "sampler" and s.cfg.sampler is None:
                continue
            o = ",".join(map(str, outs[src])) or "-"
            flash = ""
            if src in s.drum_names:
                d = s.drum_names.index(src)
                if s.pos - s.last_pos[d] < FLASH_S * sr:
                    flash = f"  HIT {int(s.last_vel[d]):3d}"
                flash += f"   {int(s.hits[d])} hits"
            fx = "fx" if src in getattr(getattr(s, "effects", None), "boards", ()) else "  "
            lines.append(f" {src:<9} out {o:<5} {fx} |{_bar(peaks[i])}| {_db(peaks[i]):6.1f} dB{flash}")
        st = s.stats(recent=2048)
        cb = st["callback"]
        rec = st["recording"]
        lines.append(f" CPU {100 * st['cpu_load']:3.0f}%  callback {cb.get('median_ms', 0):.3f} ms "
                     f"(max {cb.get('max_ms', 0):.2f} of {cb.get('budget_ms', 0):.2f})  xruns "
                     f"in {st['input_overflows']} / out {st['output_underflows']}  "
                     f"MIDI sent {st['midi_sent']}")
        rline = " recording off" if rec is None else \
            f" recording {_hms(rec['seconds'])}  dropped blocks {rec['dropped_blocks']}" \
            + (f"  {rec['error']}" if rec["error"] else "")
        lat = st["latency"]
        rline += f"  latency {lat['total_ms']:.1f} ms"
        if lat["trigger_detect_ms"] is not None:
            rline += f"  (trigger detect {lat['trigger_detect_ms']:.1f} ms)"
        lines.append(rline)
        if st["callback_error"]:
            lines.append(f" engine error in the callback: {st['callback_error']}")
        self.redraw(lines, width)

    def redraw(self, lines: list[str], width: int | None = None) -> None:
        """Draw the panel over the previous one (lines cut to the terminal's width)."""
        width = width or shutil.get_terminal_size((100, 20)).columns
        buf = ""
        if self._lines:
            buf += f"\x1b[{self._lines}F"            # back to the panel's first line
        buf += "".join(f"\x1b[2K{ln[:width - 1]}\n" for ln in lines)
        buf += "\x1b[J"                              # clear what a longer panel left below
        self.out.write(buf)
        self.out.flush()
        self._lines = len(lines)

    def summary(self, st: dict) -> str:
        lat, cb, rec = st["latency"], st["callback"], st["recording"]
        hits = ", ".join(f"{d} {n}" for d, n in st["hits"].items())
        out = [f"rtdrums live: stopped ({st['stop_reason']}) after {_hms(st['seconds'])} "
               f"({st['frames']} samples at {st['sample_rate']} Hz, block {st['block']})",
               f"  triggers: {hits}; MIDI note-ons sent: {st['midi_sent']}"
               + (f" ({st['midi_errors']} send errors)" if st["midi_errors"] else ""),
               f"  xruns: {st['input_overflows']} input overflows, {st['output_underflows']} "
               f"output underflows; CPU load max {100 * st['cpu_load_max']:.0f}%"]
        if cb.get("callbacks"):
            out.append(f"  callback: median {cb['median_ms']:.3f} ms, p99 {cb['p99_ms']:.3f} ms, "
                       f"max {cb['max_ms']:.3f} ms of {cb['budget_ms']:.3f} ms per block "
                       f"({cb['callbacks']} blocks)")
        out.append(f"  latency: {lat['total_ms']:.2f} ms = stems {lat['stems_ms']:.2f} + block "
                   f"{lat['block_ms']:.2f} + interface {lat['interface_ms']:.2f} "
                   f"({'JACK' if st.get('backend') == 'jack' else 'PortAudio'})"
                   + ("" if lat["trigger_detect_ms"] is None else
                      f"; triggers detected {lat['trigger_detect_ms']:.2f} ms after onset on average"))
        if st.get("effects"):
            out.append("  effects (measured at start, per block): " + "; ".join(
                f"{o}: {e['chain']} {e['cost_us']:.1f} us" for o, e in st["effects"].items()))
        if st["callback_errors"]:
            out.append(f"  engine errors in the callback: {st['callback_errors']} "
                       f"(first: {st['callback_error']})")
        if rec:
            state = rec["error"] or "complete"
            out.append(f"  recording: {rec['folder']} ({_hms(rec['seconds'])}, {rec['triggers']} "
                       f"triggers; {state}; {rec['dropped_blocks']} dropped blocks)")
        return "\n".join(out)
