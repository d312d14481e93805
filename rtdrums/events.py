"""Trigger events: the record type the engine emits, and the CSV/MIDI files they are written to.

An event is one row of a structured array with the fields of EVENT_DTYPE. Times are sample
indices in the input stream (sample 0 = first sample ever given to the engine):
  onset    the estimated sample at which the hit began;
  emitted  the stream position at which the note-on is sent: the end of the audio block in which
           the engine detected the hit (what a live run with the same block size does);
  drum     index into the engine's drum names (kick, snare, hihat);
  note     MIDI note number; velocity 1..127;
  decided  the newest sample of the frame that decided the hit: inside the emitting block, the
           same for any block size (where the sampler starts the note's sound).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

EVENT_DTYPE = np.dtype([("onset", np.int64), ("emitted", np.int64), ("drum", np.int32),
                        ("note", np.int32), ("velocity", np.int32),
                        ("decided", np.int64)])

CSV_HEADER = ["onset_s", "emitted_s", "instrument", "note", "velocity"]
MIDI_CHANNEL = 9            # GM percussion channel (10 counted from 1)
NOTE_LENGTH_S = 0.05        # drums have no note-off gesture; a short fixed length is customary
MIDI_TICKS_PER_BEAT = 960
MIDI_TEMPO_US = 500_000     # 120 bpm: 1920 ticks per second


def write_csv(path: str | os.PathLike, events: np.ndarray, sample_rate: float,
              drum_names: tuple[str, ...]) -> None:
    """Write events as CSV with the header onset_s,emitted_s,instrument,note,velocity.

    Written to PATH.part and renamed: a reader never sees a half-written file."""
    tmp = Path(str(path) + ".part")
    try:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for e in events:
                w.writerow([f"{e['onset'] / sample_rate:.6f}", f"{e['emitted'] / sample_rate:.6f}",
                            drum_names[e["drum"]], int(e["note"]), int(e["velocity"])])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Read a triggers CSV back as a list of dicts with typed values."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{"onset_s": float(r["onset_s"]), "emitted_s": float(r["emitted_s"]),
             "instrument": r["instrument"], "note": int(r["note"]), "velocity": int(r["velocity"])}
            for r in rows]


def write_midi(path: str | os.PathLike, events: np.ndarray, sample_rate: float,
               time_field: str = "onset") -> None:
    """Write events as a type-0 MIDI file on the GM drum channel, placed at `time_field`
    (through PATH.part, as write_csv)."""
    import mido

    ticks_per_s = MIDI_TICKS_PER_BEAT * 1e6 / MIDI_TEMPO_US
    msgs = []
    for e in events:
        t = e[time_field] / sample_rate
        msgs.append((t, 1, mido.Message("note_on", channel=MIDI_CHANNEL, note=int(e["note"]),
                                        velocity=int(e["velocity"]))))
        msgs.append((t + NOTE_LENGTH_S, 0, mido.Message("note_off", channel=MIDI_CHANNEL,
                                                        note=int(e["note"]), velocity=0)))
    msgs.sort(key=lambda m: (m[0], m[1]))    # note-offs before note-ons at the same instant
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=MIDI_TEMPO_US, time=0))
    last = 0
    for t, _, msg in msgs:
        tick = int(round(t * ticks_per_s))
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=MIDI_TICKS_PER_BEAT)
    mid.tracks.append(track)
    tmp = Path(str(path) + ".part")
    try:
        mid.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_midi_notes(path: str | os.PathLike) -> list[tuple[float, int, int]]:
    """(time_s, note, velocity) of every note-on with velocity > 0 in a MIDI file."""
    import mido

    out = []
    t = 0.0
    for msg in mido.MidiFile(path):      # iterating a MidiFile yields delta times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out.append((t, msg.note, msg.velocity))
    return out
