"""The pattern a player plays along to in `rtdrums calibrate --groove`: reading it, its click, its
step grid, and its notes on the take's time line. No devices here (host.groove_take plays it).

A pattern is a drum MIDI file (GM notes: kick 36, snare 38, hi-hat 42/44/46) read in beats, so
`--bpm` sets the tempo; 4/4 is assumed. The take starts with LEAD_IN_S of silence (time to get
ready, and for the stream to settle), then the count-in: beat 0 of the pattern is at
`LEAD_IN_S + count_in_beats * 60 / bpm` seconds into the take, and a note is heard in the take the
device's round trip (output + input latency) after the click that placed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .render import GROOVE_NOTES

DEFAULT_PATTERN = Path(__file__).parents[1] / "data" / "patterns" / "calibration-groove.mid"
BEATS_PER_BAR = 4
STEPS_PER_BEAT = 4                 # the grid shows 16th notes
LEAD_IN_S = 1.0                    # silence before the first click
TAIL_S = 1.5                       # recorded after the pattern's last bar: the last hits' decay
CLICK_S = 0.03
CLICK_HZ = (1000.0, 1600.0)        # normal beat, accented downbeat
CLICK_TAU_S = 0.006
ACCENT_DB = 6.0                    # normal beats this much below the downbeat
ROWS = (("kick", "kick"), ("snare", "snare"), ("hihat", "hi-hat"))


@dataclass(frozen=True)
class Pattern:
    path: Path
    notes: tuple[tuple[float, int, int], ...]     # (beat from the pattern's start, note, velocity)
    bpm: float
    bars: int

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    @property
    def seconds(self) -> float:
        """Length of the pattern's bars (the landing note on the next downbeat not included)."""
        return self.bars * BEATS_PER_BAR * self.beat_s

    def drum_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, note, _ in self.notes:
            m = GROOVE_NOTES.get(note)
            if m is not None:
                key = m.drum if m.drum != "hihat" else f"hihat_{m.articulation}"
                out[key] = out.get(key, 0) + 1
        return out


def load_pattern(path: str | Path | None = None, bpm: float | None = None) -> Pattern:
    """The pattern in beats (the file's first tempo unless bpm is given); a UserError if it cannot
    be read or lacks kick, snare or hi-hat notes."""
    import mido

    path = Path(path) if path else DEFAULT_PATTERN
    if bpm is not None and not 30 <= bpm <= 300:
        raise UserError(f"--bpm {bpm:g}: give a tempo between 30 and 300 beats per minute")
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise UserError(f"cannot read the pattern {path} ({' '.join(str(err).split())}): pass a "
                        "standard MIDI file (.mid)") from None
    tempo, notes = None, []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and tempo is None:
                tempo = msg.tempo
            elif msg.type == "note_on" and msg.velocity > 0:
                notes.append((tick / mid.ticks_per_beat, msg.note, msg.velocity))
    notes.sort(key=lambda n: (n[0], n[1]))
    drums = {GROOVE_NOTES[n].drum for _, n, _ in notes if n in GROOVE_NOTES}
    missing = [label for d, label in ROWS if d not in drums]
    if missing:
        pitches = ", ".join(map(str, sorted({n for _, n, _ in notes}))) or "none"
        raise UserError(f"the pattern {path} has no {' or '.join(missing)} notes (pitches found: {pitches}): "
                        "a calibration groove needs kick (36), snare (38) and hi-hat (42, 44 or 46) notes")
    last = max(t for t, _, _ in notes)
    bars = max(1, math.ceil((last + 1e-6) / BEATS_PER_BAR))
    if bars * BEATS_PER_BAR - last > BEATS_PER_BAR - 1e-6 and bars > 1:
        bars -= 1                       # a landing note exactly on the next downbeat
    bpm = float(bpm) if bpm is not None else (mido.tempo2bpm(tempo) if tempo else 120.0)
    return Pattern(path, tuple(notes), bpm, bars)


def take_layout(p: Pattern, rate: int, count_in_beats: int) -> tuple[int, int]:
    """(sample where the pattern's beat 0 is played, total samples of the take)."""
    start = int(round((LEAD_IN_S + count_in_beats * p.beat_s) * rate))
    last = max(t for t, _, _ in p.notes) * p.beat_s
    total = start + int(round((max(p.seconds, last) + TAIL_S) * rate))
    return start, total


def click_track(p: Pattern, rate: int, count_in_beats: int, level_db: float) -> np.ndarray:
    """The whole take's click, synthesised once: after the lead-in, a beep on every beat of the count-in and of the
    pattern's bars, the downbeats accented (higher, ACCENT_DB louder), silence in the tail."""
    start, total = take_layout(p, rate, count_in_beats)
    out = np.zeros(total, np.float32)
    n = int(CLICK_S * rate)
    t = np.arange(n) / rate
    env = np.exp(-t / CLICK_TAU_S) * np.minimum(1.0, t * rate / 16)       # 16-sample fade-in
    peak = 10 ** (level_db / 20)
    beeps = [env * np.sin(2 * np.pi * hz * t) for hz in CLICK_HZ]
    beeps = [(b / np.max(np.abs(b))).astype(np.float32) for b in beeps]     # peak 1
    for at, accent in click_frames(p, rate, count_in_beats):
        gain = peak if accent else peak * 10 ** (-ACCENT_DB / 20)
        out[at:at + n] += np.float32(gain) * beeps[accent]
    return out


def click_frames(p: Pattern, rate: int, count_in_beats: int) -> list[tuple[int, bool]]:
    """(sample, accented) of every click in the take."""
    return [(int(round((LEAD_IN_S + b * p.beat_s) * rate)), (b - count_in_beats) % BEATS_PER_BAR == 0)
            for b in range(count_in_beats + p.bars * BEATS_PER_BAR)]


def take_notes(p: Pattern, count_in_beats: int, latency_s: float) -> list[tuple[float, int, int]]:
    """(time s in the take, note, velocity): the pattern after the count-in, moved by the
    device's round trip (what the player hears late, and what the input records late)."""
    start = LEAD_IN_S + count_in_beats * p.beat_s + latency_s
    return [(start + b * p.beat_s, n, v) for b, n, v in p.notes]


def write_notes(notes: list[tuple[float, int, int]], path: Path) -> Path:
    """Notes (time s, note, velocity) as a type-0 MIDI file at 120 bpm (960 ticks a second)."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    events = sorted([(round(t * 960), 1, n, v) for t, n, v in notes] +
                    [(round(t * 960) + 48, 0, n, 0) for t, n, v in notes])
    now = 0
    for tick, _, note, vel in events:
        track.append(mido.Message("note_on", channel=9, note=note, velocity=vel, time=tick - now))
        now = tick
    mid.save(str(path))
    return path


def _cell(note: int, vel: int) -> str:
    m = GROOVE_NOTES[note]
    ch = {"open": "o", "pedal": "p"}.get(m.articulation, "x")
    return ch.upper() if vel >= 96 else ch


def grid_rows(p: Pattern) -> list[tuple[str, str]]:
    """(label, cells) per drum: one character per 16th of the pattern's bars, '|' between
    bars; x = hit (X loud), o = open hi-hat, p = pedal hi-hat, '.' = rest."""
    steps = p.bars * BEATS_PER_BAR * STEPS_PER_BEAT
    rows = []
    for drum, label in ROWS:
        cells = ["."] * steps
        for b, note, vel in p.notes:
            m = GROOVE_NOTES.get(note)
            k = int(round(b * STEPS_PER_BEAT))
            if m is not None and m.drum == drum and k < steps:
                cells[k] = _cell(note, vel)
        rows.append((label, _bars(cells)))
    return rows


def _bars(cells: list[str]) -> str:
    per_bar = BEATS_PER_BAR * STEPS_PER_BEAT
    return "|".join("".join(cells[i:i + per_bar]) for i in range(0, len(cells), per_bar))


def cursor(p: Pattern, seconds_into_pattern: float) -> str:
    """A '^' under the current 16th of the grid (blank before beat 0 and after the last bar)."""
    steps = p.bars * BEATS_PER_BAR * STEPS_PER_BEAT
    k = int(math.floor(seconds_into_pattern / p.beat_s * STEPS_PER_BEAT))
    cells = [" "] * steps
    if 0 <= k < steps:
        cells[k] = "^"
    return _bars(cells).replace("|", " ")
