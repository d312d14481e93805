"""Drum kits from General MIDI soundfonts: each drum preset (bank 128) as a Hydrogen kit folder.

Every General MIDI percussion note (35-81) that a preset plays is rendered with fluidsynth
(reverb and chorus off) at VELOCITIES, SPACING_S apart with all sound off just before the next
one (at most 4 s of a cymbal's ring is kept), each hit cut from the render and trimmed (the lead by the
kit loader, the tail below TAIL_DB re its peak), and written as a velocity layer of one
instrument of a Hydrogen kit (drumkit.xml + one FLAC per layer). Instruments are named after the
GM notes ("Bass Drum 1", "Closed Hi-Hat", ...), so rtdrums.training.kits gives them their GM roles, and
everything that takes a kit folder (`train --kit`, `train --trigger-kit`, `eval --kit`, renders,
rooms) takes these unchanged.

Left out: presets that have no kick, snare or hi-hat note, and GS orchestra and effects sets
(their names say so: they put timpani and effects on the GM drum notes). By default one preset
per family (Standard, Room, Power, ...; `variants=True` for "Standard 1", "Room 2" ... too, of
which soundfonts often hold copies: presets that play the same instruments on the drum notes as
one before them are left out).

The same font and settings give the same kits, bit for bit (fluidsynth's float output has no
dither). Run `python -m rtdrums.training.soundfont_kits FONT.sf2 --out DIR` to write them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from ..errors import UserError
from .kits import GM_ROLES

DRUM_BANK = 128
VELOCITIES = (20, 35, 50, 65, 80, 95, 111, 127)
SAMPLE_RATE = 48000
SPACING_S = 4.0            # between two rendered hits: a FluidR3 crash rings about 3 s
HOLD_S = 3.5               # note-off after the note-on (some presets loop until released)
CUT_S = 0.02               # all sound off this long before the next stroke: a long crash would
                           # still ring into it, and its tail would pass for the next hit's onset
TAIL_DB = -60.0            # a hit ends at its last sample within this of its peak
FADE_S = 0.005             # and fades out over its last FADE_S
NOTES_PER_RUN = 8          # notes rendered by one fluidsynth run (bounds its temporary file)
NOT_KITS = ("orchestra", "sfx", "effect")

GM_NAMES = {
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare",
    39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat",
    47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas", 71: "Short Whistle",
    72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro", 75: "Claves", 76: "Hi Wood Block",
    77: "Low Wood Block", 78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle",
    81: "Open Triangle"}
# kit order: the plain kick and snare first, so that renders play them for the groove's notes
NOTE_ORDER = (36, 35, 38, 40, 37) + tuple(n for n in sorted(GM_NAMES) if n not in (36, 35, 38, 40, 37))
NEEDED = {"kick": (35, 36), "snare": (38, 40), "hihat": (42, 44, 46)}


@dataclass(frozen=True)
class DrumPreset:
    """A bank-128 preset of a soundfont; notes: the GM percussion notes it has a sample for."""
    program: int
    name: str
    notes: tuple[int, ...]
    instruments: tuple[str, ...]      # per note, the soundfont instrument that plays it

    @property
    def family(self) -> str:
        return re.sub(r"\s+\d+$", "", self.name).strip()


# ---------------------------------------------------------------- reading the soundfont

def _chunks(data: bytes, start: int, end: int):
    p = start
    while p + 8 <= end:
        cid, size = data[p:p + 4], struct.unpack("<I", data[p + 4:p + 8])[0]
        yield cid, p + 8, size
        p += 8 + size + (size & 1)


def _records(blob: bytes, size: int, fmt: str) -> list[tuple]:
    return [struct.unpack(fmt, blob[i * size:(i + 1) * size]) for i in range(len(blob) // size)]


def _name(raw: bytes) -> str:
    return raw.split(b"\0")[0].decode("latin-1").strip()


def _read_font(font: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """The pdta sub-chunks and the INFO strings of a SoundFont 2 file."""
    if not font.is_file():
        raise UserError(f"soundfont {font} not found: pass an .sf2 file (e.g. apt-get install "
                        "fluid-soundfont-gm for /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    data = font.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise UserError(f"{font} is not a SoundFont 2 file (.sf2): pass one")
    pdta, info = {}, {}
    for cid, start, size in _chunks(data, 12, len(data)):
        kind = data[start:start + 4]
        if cid == b"LIST" and kind in (b"pdta", b"INFO"):
            for sid, s, n in _chunks(data, start + 4, start + size):
                if kind == b"pdta":
                    pdta[sid.decode("latin-1")] = data[s:s + n]
                else:
                    info[sid.decode("latin-1")] = _name(data[s:s + n])
    if not {"phdr", "pbag", "pgen", "inst", "ibag", "igen"} <= pdta.keys():
        raise UserError(f"{font}: damaged SoundFont (no preset data): pass another .sf2 file")
    return pdta, info


def _zone_gens(bags: list[tuple], gens: list[tuple], b: int) -> dict[int, int]:
    return {op: amount for op, amount in gens[bags[b][0]:bags[b + 1][0]]}


def _key_range(gens: dict[int, int]) -> tuple[int, int]:
    amount = gens.get(43, 127 << 8)          # generator 43 keyRange: lo in the low byte
    return amount & 0xFF, amount >> 8


def drum_presets(font: str | Path) -> list[DrumPreset]:
    """The bank-128 presets of a soundfont with the GM percussion notes each one plays."""
    pdta, _ = _read_font(Path(font))
    phdr = _records(pdta["phdr"], 38, "<20sHHHIII")
    pbag, pgen = _records(pdta["pbag"], 4, "<HH"), _records(pdta["pgen"], 4, "<HH")
    inst, ibag, igen = (_records(pdta["inst"], 22, "<20sH"), _records(pdta["ibag"], 4, "<HH"),
                        _records(pdta["igen"], 4, "<HH"))
    out = []
    for i in range(len(phdr) - 1):
        name, program, bank, bag0 = phdr[i][:4]
        if bank != DRUM_BANK:
            continue
        played: dict[int, str] = {}
        for b in range(bag0, phdr[i + 1][3]):
            gens = _zone_gens(pbag, pgen, b)
            if 41 not in gens or gens[41] + 1 >= len(inst):   # 41: the zone's instrument
                continue
            lo, hi = _key_range(gens)
            k = gens[41]
            for ib in range(inst[k][1], inst[k + 1][1]):
                igens = _zone_gens(ibag, igen, ib)
                if 53 not in igens:                             # 53: sampleID, a sounding zone
                    continue
                ilo, ihi = _key_range(igens)
                for note in range(max(lo, ilo, 35), min(hi, ihi, 81) + 1):
                    played.setdefault(note, _name(inst[k][0]))
        notes = tuple(n for n in NOTE_ORDER if n in played)
        out.append(DrumPreset(program, _name(name), notes, tuple(played[n] for n in notes)))
    return sorted(out, key=lambda p: p.program)


def kit_presets(presets: list[DrumPreset], variants: bool = False) -> list[DrumPreset]:
    """The presets worth a kit: with kick, snare and hi-hat, not an orchestra or effects set,
    not a copy of one before; without `variants` the first of each family only."""
    out, seen, families = [], set(), set()
    for p in presets:
        words = p.name.lower()
        if any(w in words for w in NOT_KITS) or not all(set(n) & set(p.notes) for n in NEEDED.values()):
            continue
        played = tuple(zip(p.notes, p.instruments))
        if played in seen or (not variants and p.family in families):
            continue
        seen.add(played)
        families.add(p.family)
        out.append(p)
    return out


# ---------------------------------------------------------------- rendering

def fluidsynth() -> str:
    """Path of the fluidsynth program, or a one-line UserError."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise UserError("fluidsynth not found: install it (apt-get install fluidsynth) to render "
                        "soundfont kits")
    return exe


def _midi(path: Path, program: int, strokes: list[tuple[int, int]]) -> None:
    """A MIDI file that plays the strokes (note, velocity) on the drum channel, SPACING_S apart."""
    import mido

    tpb, tempo = 480, 500_000                  # 960 ticks per second
    tick = round(SPACING_S * 960)
    hold = round(HOLD_S * 960)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0),
                            mido.Message("program_change", channel=9, program=program, time=0)])
    for note, velocity in strokes:
        track.append(mido.Message("note_on", channel=9, note=note, velocity=velocity, time=0))
        track.append(mido.Message("note_off", channel=9, note=note, velocity=0, time=hold))
        cut = tick - round(CUT_S * 960)
        track.append(mido.Message("control_change", channel=9, control=120, value=0, time=cut - hold))
        track.append(mido.MetaMessage("marker", text="", time=tick - cut))
    # an event after the last stroke's window, so that the render holds its whole decay
    track.append(mido.Message("control_change", channel=9, control=110, value=0, time=0))
    midi = mido.MidiFile(ticks_per_beat=tpb)
    midi.tracks.append(track)
    midi.save(str(path))


def render_strokes(font: Path, program: int, strokes: list[tuple[int, int]],
                   sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Each stroke (note, velocity) of drum preset `program`, rendered alone: mono float32 from
    its note-on, the tail below TAIL_DB cut and faded out (empty if silent)."""
    exe = fluidsynth()
    out = []
    with tempfile.TemporaryDirectory(prefix="rtdrums-sf-") as tmp:
        for first in range(0, len(strokes), NOTES_PER_RUN * len(VELOCITIES)):
            part = strokes[first:first + NOTES_PER_RUN * len(VELOCITIES)]
            mid, wav = Path(tmp) / "part.mid", Path(tmp) / "part.wav"
            _midi(mid, program, part)
            cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-r", str(sample_rate), "-O", "float",
                   "-T", "wav", "-F", str(wav), str(font), str(mid)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0 or not wav.is_file():
                err = " ".join((done.stderr or done.stdout).split())[:200]
                raise UserError(f"fluidsynth could not render {font} ({err}): check the font")
            audio, _ = sf.read(str(wav), dtype="float32", always_2d=True)
            mono = audio.mean(axis=1)
            step = round(SPACING_S * sample_rate)
            for i in range(len(part)):
                out.append(_trimmed(mono[i * step:(i + 1) * step], sample_rate))
    return out


def _trimmed(x: np.ndarray, sample_rate: int) -> np.ndarray:
    mag = np.abs(x)
    if not mag.size or mag.max() <= 0:
        return x[:0].astype(np.float32)
    end = int(np.flatnonzero(mag >= mag.max() * 10 ** (TAIL_DB / 20))[-1]) + 1
    y = x[:end].astype(np.float32)
    n = min(len(y), max(1, round(FADE_S * sample_rate)))
    y[-n:] *= np.cos(np.linspace(0, np.pi / 2, n)).astype(np.float32)
    return y


# ---------------------------------------------------------------- writing kits

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "kit"


def _layer_ranges(velocities: tuple[int, ...]) -> list[tuple[float, float]]:
    """Velocity range (0..1) of each layer: from the midpoint below to the midpoint above."""
    v = np.asarray(velocities, float) / 127
    edges = np.concatenate([[0.0], (v[1:] + v[:-1]) / 2, [1.0]])
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def _drumkit_xml(name: str, info: str, license: str, instruments: list[tuple[int, list[tuple[str, float, float]]]]) -> str:
    rows = ['<?xml version="1.0" encoding="UTF-8"?>', "<drumkit_info>",
            f"  <name>{escape(name)}</name>", "  <author>rtdrums.training.soundfont_kits</author>",
            f"  <info>{escape(info)}</info>", f"  <license>{escape(license)}</license>",
            "  <instrumentList>"]
    for i, (note, layers) in enumerate(instruments):
        mute = 1 if GM_ROLES.get(note, "").startswith("hihat") else -1
        rows += ["    <instrument>", f"      <id>{i}</id>", f"      <name>{GM_NAMES[note]}</name>",
                 "      <volume>1</volume>", "      <isMuted>false</isMuted>", "      <gain>1</gain>",
                 f"      <muteGroup>{mute}</muteGroup>", "      <midiOutChannel>9</midiOutChannel>",
                 f"      <midiOutNote>{note}</midiOutNote>"]
        for filename, lo, hi in layers:
            rows += ["      <layer>", f"        <filename>{filename}</filename>",
                     f"        <min>{lo:.6f}</min>", f"        <max>{hi:.6f}</max>",
                     "        <gain>1</gain>", "        <pitch>0</pitch>", "      </layer>"]
        rows.append("    </instrument>")
    rows += ["  </instrumentList>", "</drumkit_info>", ""]
    return "\n".join(rows)


def write_kit(font: str | Path, preset: DrumPreset, folder: Path,
              velocities: tuple[int, ...] = VELOCITIES, sample_rate: int = SAMPLE_RATE) -> Path:
    """Render the preset's notes at the velocities into a Hydrogen kit folder; returns it.

    A folder written before with the same font, preset and settings is kept as it is."""
    font = Path(font).resolve()
    stamp = {"font": str(font), "font_bytes": font.stat().st_size, "program": preset.program,
             "notes": list(preset.notes), "velocities": list(velocities), "sample_rate": sample_rate,
             "spacing_s": SPACING_S, "hold_s": HOLD_S, "cut_s": CUT_S, "tail_db": TAIL_DB}
    stamp_file = folder / "soundfont.json"
    if (folder / "drumkit.xml").is_file() and stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == stamp:
                return folder
        except ValueError:
            pass
    _, info = _read_font(font)
    strokes = [(n, v) for n in preset.notes for v in velocities]
    audio = render_strokes(font, preset.program, strokes, sample_rate)
    folder.mkdir(parents=True, exist_ok=True)
    ranges = _layer_ranges(velocities)
    instruments = []
    for k, note in enumerate(preset.notes):
        layers = []
        for j, (lo, hi) in enumerate(ranges):
            hit = audio[k * len(velocities) + j]
            if not hit.size:
                continue
            filename = f"{note:02d}_{_slug(GM_NAMES[note])}_v{velocities[j]:03d}.flac"
            sf.write(str(folder / filename), hit, sample_rate, subtype="PCM_24")
            layers.append((filename, lo, hi))
        if layers:
            instruments.append((note, layers))
    name = f"{info.get('INAM', font.stem)} {preset.name}"
    description = (f"Preset {DRUM_BANK}:{preset.program} ({preset.name}) of {font.name}, rendered by "
                   f"fluidsynth at velocities {', '.join(map(str, velocities))}, reverb and chorus off.")
    license = info.get("ICOP", "") or "see the soundfont's license"
    (folder / "drumkit.xml").write_text(_drumkit_xml(name, description, license, instruments))
    stamp_file.write_text(json.dumps(stamp, indent=1))
    return folder


def soundfont_kits(font: str | Path, out: str | Path, variants: bool = False,
                   names: list[str] | None = None, velocities: tuple[int, ...] = VELOCITIES,
                   sample_rate: int = SAMPLE_RATE, progress=None) -> list[Path]:
    """Kit folders out/<font>-<program>-<preset> of the font's drum kits (see kit_presets;
    `names`: only the presets of these names, case-insensitive)."""
    fluidsynth()
    font = Path(font)
    presets = kit_presets(drum_presets(font), variants or bool(names))
    if names:
        wanted = {n.lower() for n in names}
        unknown = wanted - {p.name.lower() for p in presets}
        if unknown:
            raise UserError(f"{font.name} has no drum kit preset {sorted(unknown)[0]!r}: choose from "
                            f"{', '.join(p.name for p in presets)}")
        presets = [p for p in presets if p.name.lower() in wanted]
    if not presets:
        raise UserError(f"{font} has no drum kit (bank {DRUM_BANK} preset with kick, snare and "
                        "hi-hat): pass a General MIDI soundfont")
    folders = []
    for p in presets:
        folders.append(write_kit(font, p, Path(out) / f"{_slug(font.stem)}-{p.program:03d}-{_slug(p.name)}",
                                 velocities, sample_rate))
        if progress:
            progress(folders[-1])
    return folders


def kit_folders(path: str | Path) -> list[Path]:
    """A kit folder (with drumkit.xml) as itself, or the kit folders directly inside a folder."""
    folder = Path(path).expanduser()
    if (folder / "drumkit.xml").is_file():
        return [folder]
    found = sorted(p for p in folder.iterdir() if (p / "drumkit.xml").is_file()) if folder.is_dir() else []
    if not found:
        raise UserError(f"{folder}: neither a kit folder (drumkit.xml) nor a folder of kit folders; "
                        "write soundfont kits with `python -m rtdrums.training.soundfont_kits FONT.sf2 --out DIR`")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.training.soundfont_kits",
                                description="Write the drum kits of a General MIDI soundfont as "
                                            "Hydrogen kit folders (rendered with fluidsynth).")
    p.add_argument("font", type=Path, help="SoundFont 2 file (.sf2)")
    p.add_argument("--out", type=Path, required=True, help="folder to write one kit folder per preset into")
    p.add_argument("--variants", action="store_true",
                   help="also the numbered variants of each preset family (Standard 1, Room 2, ...)")
    p.add_argument("--preset", action="append", metavar="NAME", help="only this preset (repeatable)")
    p.add_argument("--list", action="store_true", help="list the font's drum presets and exit")
    args = p.parse_args(argv)
    try:
        if args.list:
            chosen = {q.program for q in kit_presets(drum_presets(args.font), True)}
            for q in drum_presets(args.font):
                print(f"{q.program:3d} {q.name:24s} {len(q.notes):2d} notes  "
                      f"{'kit' if q.program in chosen else 'left out'}")
            return 0
        soundfont_kits(args.font, args.out, args.variants, args.preset,
                       progress=lambda f: print(f"wrote {f}"))
    except UserError as err:
        print(f"rtdrums: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
