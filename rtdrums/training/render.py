"""Drum mixtures with exact ground truth, rendered from a MIDI groove and a Hydrogen kit.

Every note of the groove places one kit sample (chosen by velocity layer, scaled by
(velocity/127) ** VELOCITY_EXPONENT) at the note's sample. Each drum is summed into its own stem
(kick, snare, hihat; toms and cymbals into residual), and the mix is computed as the sum of the
stems, so the stems add up to the mix exactly. The onset list names every hit that was rendered,
at the sample where its audio starts (kit samples are trimmed to start at their onset), and how
long the sample takes from there to its attack (attack_s: some soft layers rise out of a few ms of
room noise or pre-ring first).

An open hi-hat is choked, as a real one is, at the next closed or pedal hi-hat: it fades out over
CHOKE_S from that sample. All stems share one gain so that the mix peaks at PEAK. The render runs
until the last hit has decayed (the full length of its sample).

Notes follow the Roland TD-11 map of the Groove MIDI Dataset (see GROOVE_NOTES). Each note asks
for kit roles in order (pedal hat -> closed hat; open hat -> closed hat; closed -> pedal -> open);
a note the kit has no instrument for is left out of both the audio and the onsets. Among the
instruments of a role, the name picks the one for the articulation (rim -> "Snare Rimshot",
cross-stick -> "Stick" or "Rim Click", high/mid/low tom, crash, ride, bell), else the first
plain one (see _pick).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import UserError
from .kits import Instrument, Kit, first_within, name_words

STEMS = ("kick", "snare", "hihat", "residual")
DRUMS = ("kick", "snare", "hihat", "other")
VELOCITY_EXPONENT = 1.5     # amplitude ~ (velocity/127) ** 1.5, on top of the velocity layers
CHOKE_S = 0.010             # open hi-hat fade-out when the hat closes
PEAK = 10 ** (-3 / 20)      # mix peak after normalisation (-3 dBFS)
ATTACK_DB = -30.0           # a hit's attack: its sample's first value within this of the peak
GROOVE_DIR = Path(__file__).parents[1] / "data" / "grooves"
SPLITS = ("train", "validation", "test", "model")


class NoteMap(NamedTuple):
    """How a groove note is rendered: output drum, articulation, kit roles to try in order."""
    drum: str
    articulation: str
    roles: tuple[str, ...]


_CLOSED = NoteMap("hihat", "closed", ("hihat_closed", "hihat_pedal", "hihat_open"))
_OPEN = NoteMap("hihat", "open", ("hihat_open", "hihat_closed"))
_HIGH, _MID, _LOW = (NoteMap("other", f"tom_{a}", ("tom",)) for a in ("high", "mid", "low"))
_CRASH, _RIDE = NoteMap("other", "crash", ("cymbal",)), NoteMap("other", "ride", ("cymbal",))

# Roland TD-11 notes as recorded in the Groove MIDI Dataset.
GROOVE_NOTES: dict[int, NoteMap] = {
    36: NoteMap("kick", "kick", ("kick",)),
    38: NoteMap("snare", "head", ("snare",)),
    40: NoteMap("snare", "rim", ("snare",)),
    37: NoteMap("snare", "xstick", ("snare",)),
    42: _CLOSED, 22: _CLOSED, 46: _OPEN, 26: _OPEN,
    44: NoteMap("hihat", "pedal", ("hihat_pedal", "hihat_closed")),
    48: _HIGH, 50: _HIGH, 45: _MID, 47: _MID, 43: _LOW, 58: _LOW,
    49: _CRASH, 57: _CRASH, 55: NoteMap("other", "splash", ("cymbal",)),
    52: NoteMap("other", "china", ("cymbal",)), 51: _RIDE, 59: _RIDE,
    53: NoteMap("other", "ride_bell", ("cymbal",)),
}
_HAT_ARTICULATION = {"hihat_closed": "closed", "hihat_open": "open", "hihat_pedal": "pedal"}
_ROLE_DRUM = {"kick": "kick", "snare": "snare", "hihat_closed": "hihat", "hihat_open": "hihat",
              "hihat_pedal": "hihat", "tom": "other", "cymbal": "other", "other": "other"}
_ROLE_NOTE = {"kick": 36, "snare": 38, "hihat_closed": 42, "hihat_open": 46, "hihat_pedal": 44,
              "tom": 45, "cymbal": 49, "other": 0}

# Name words that make an instrument the better (want) or worse (avoid) pick for an articulation.
_WANT = {"rim": ("rim",), "xstick": ("stick", "click", "side", "cross", "xstick"),
         "tom_high": ("hi", "high"), "tom_mid": ("mid", "middle"), "tom_low": ("low", "floor"),
         "crash": ("crash",), "ride": ("ride",), "ride_bell": ("bell", "cup"),
         "china": ("china",), "splash": ("splash",)}
_AVOID = {"head": ("rim", "stick", "click", "side", "cross", "roll", "clap", "brush"),
          "rim": ("click", "stick", "roll"), "xstick": ("roll",), "ride": ("bell", "cup"),
          "crash": ("ride", "china", "splash", "bell")}
_FALLBACK = {"rim": "head", "xstick": "head", "china": "crash", "splash": "crash",
             "ride_bell": "ride"}


class Onset(NamedTuple):
    """One rendered hit. time_s = sample index / sample rate, exactly.

    drum: kick, snare, hihat or other; note: the groove's MIDI note; velocity: 1..127;
    articulation: from the groove note (kick, head, rim, xstick, tom_high/mid/low, crash, ride,
    ride_bell, china, splash), but for hi-hats what was rendered: closed, open or pedal (a pedal
    note on a kit without a pedal sample is rendered, and labelled, closed). attack_s: seconds from
    time_s to the sample's first value within ATTACK_DB of its peak.
    """
    time_s: float
    drum: str
    note: int
    velocity: int
    articulation: str
    attack_s: float = 0.0


@dataclass(frozen=True)
class Render:
    """A rendered mixture and the onsets of every hit in it, sorted by time.

    mix == stems['kick'] + stems['snare'] + stems['hihat'] + stems['residual'], exactly (float32,
    added in that order); all arrays have the same length.
    """
    sample_rate: int
    mix: np.ndarray
    stems: dict[str, np.ndarray]
    onsets: list[Onset]

    def times(self, drum: str | None = None) -> np.ndarray:
        """Onset times in seconds (of one drum, or all), e.g. as mir_eval reference onsets."""
        return np.array([o.time_s for o in self.onsets if drum is None or o.drum == drum])

    def velocities(self, drum: str | None = None) -> np.ndarray:
        """MIDI velocities of the onsets (of one drum, or all), in the order of times()."""
        return np.array([o.velocity for o in self.onsets if drum is None or o.drum == drum], float)

    def samples(self, drum: str | None = None) -> np.ndarray:
        """Onset sample indices (of one drum, or all)."""
        return np.round(self.times(drum) * self.sample_rate).astype(np.int64)


class _Hit(NamedTuple):
    start: int
    instrument: Instrument
    velocity: int
    onset: Onset


def shipped_grooves(split: str) -> list[Path]:
    """The Groove MIDI Dataset files shipped with rtdrums for a split ('train', 'validation', 'test')."""
    if split not in SPLITS:
        raise UserError(f"unknown groove split {split!r}: use one of {', '.join(SPLITS)}")
    return sorted((GROOVE_DIR / split).glob("*.mid"))


def groove_files(items: list[Path] | None, default_split: str) -> list[Path]:
    """MIDI files named directly or found in folders (recursively); the shipped split if none."""
    if not items:
        return shipped_grooves(default_split)
    out = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
            if not found:
                raise UserError(f"{item}: no .mid files in this folder")
            out += found
        elif item.is_file():
            out.append(item)
        else:
            raise UserError(f"{item}: no such MIDI file or folder")
    return out


def load_groove(midi_path: str | Path) -> list[tuple[float, int, int]]:
    """(time_s, note, velocity) of every note-on in a MIDI file, by time (tempo map applied)."""
    import mido

    path = Path(midi_path)
    try:
        midi = mido.MidiFile(str(path))
        notes, t = [], 0.0
        for msg in midi:
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                notes.append((t, msg.note, msg.velocity))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise UserError(f"cannot read MIDI file {path} ({' '.join(str(err).split())}): "
                        "pass a standard MIDI file (.mid)") from None
    return sorted(notes, key=lambda n: (n[0], n[1]))


def _named(inst: Instrument, prefixes: tuple[str, ...]) -> bool:
    return bool(prefixes) and any(w.startswith(prefixes) for w in name_words(inst.name))


def _pick(instruments: list[Instrument], articulation: str) -> Instrument:
    """The instrument whose name fits the articulation best.

    Order: a wanted word and no avoided word; a wanted word; the fallback articulation's pick
    (rim -> head, china -> crash, ...); the first instrument with no avoided word; the first.
    """
    want, avoid = _WANT.get(articulation, ()), _AVOID.get(articulation, ())
    plain = [i for i in instruments if not _named(i, avoid)]
    for inst in plain + instruments:
        if _named(inst, want):
            return inst
    if articulation in _FALLBACK:
        return _pick(instruments, _FALLBACK[articulation])
    return (plain or instruments)[0]


def choose_instrument(kit: Kit, note: int) -> tuple[Instrument, str] | None:
    """The kit instrument and articulation that render a groove note, or None if the kit cannot."""
    nm = GROOVE_NOTES.get(note)
    if nm is None:
        return None
    for role in nm.roles:
        candidates = kit.by_role(role)
        if candidates:
            art = _HAT_ARTICULATION.get(role, nm.articulation)
            return _pick(candidates, nm.articulation), art
    return None


def _hits_from_groove(notes, kit: Kit, sample_rate: int) -> list[_Hit]:
    cache: dict[int, tuple[Instrument, str] | None] = {}
    hits = []
    for t, note, vel in notes:
        if note not in cache:
            cache[note] = choose_instrument(kit, note)
        if cache[note] is None:
            continue
        inst, art = cache[note]
        start = int(round(t * sample_rate))
        onset = Onset(start / sample_rate, GROOVE_NOTES[note].drum, note, int(vel), art)
        hits.append(_Hit(start, inst, int(vel), onset))
    return hits


def _choke_points(hits: list[_Hit]) -> dict[int, int]:
    """hit index -> sample at which an open hi-hat is closed by the next closed/pedal hi-hat."""
    chokes, open_idx = {}, []
    for k in sorted(range(len(hits)), key=lambda k: hits[k].start):
        o = hits[k].onset
        if o.drum != "hihat":
            continue
        if o.articulation in ("closed", "pedal"):
            for j in open_idx:
                if hits[j].start < hits[k].start:
                    chokes[j] = hits[k].start
            open_idx = [j for j in open_idx if j not in chokes]
        elif o.articulation == "open":
            open_idx.append(k)
    return chokes


def _choke(audio: np.ndarray, at: int, sample_rate: int) -> np.ndarray:
    """Cut `audio` at sample `at` with a raised-cosine fade of CHOKE_S."""
    n = max(1, int(round(CHOKE_S * sample_rate)))
    end = min(len(audio), at + n)
    out = audio[:end].copy()
    k = np.arange(end - at, dtype=np.float64)
    out[at:end] *= (0.5 * (1 + np.cos(np.pi * (k + 1) / (n + 1)))).astype(np.float32)
    return out


def velocity_gain(velocity: int) -> float:
    """Amplitude factor of a MIDI velocity (1..127)."""
    return (np.clip(velocity, 1, 127) / 127.0) ** VELOCITY_EXPONENT


def _placed(hits: list[_Hit], kit: Kit, sample_rate: int, seed: int | None,
            end: int | None = None) -> list[tuple[_Hit, np.ndarray]]:
    """Each audible hit with its attack_s and its audio as placed (velocity gain, choke), before
    the mix's normalisation; seed and end as in _mix."""
    rng = None if seed is None else np.random.default_rng(seed)
    chokes = _choke_points(hits)
    placed = []
    for k, h in enumerate(hits):
        audio = kit.sample(h.instrument, h.velocity / 127.0, sample_rate, rng,
                           None if end is None else max(0, end - h.start))
        audio = audio * np.float32(velocity_gain(h.velocity))
        attack_s = first_within(audio, ATTACK_DB) / sample_rate
        if k in chokes:
            audio = _choke(audio, chokes[k] - h.start, sample_rate)
        if np.any(audio):
            placed.append((h._replace(onset=h.onset._replace(attack_s=attack_s)), audio))
    return placed


def hit_sounds(midi_path: str | Path, kit: Kit, sample_rate: int = 48000, max_seconds: float | None = None,
               seed: int = 0) -> list[np.ndarray]:
    """The audio of each hit of render_groove(...).onsets alone (in that order), before the mix's
    normalisation: where each hit's own attack lies after its onset."""
    notes = load_groove(midi_path)
    if max_seconds is not None:
        notes = [n for n in notes if n[0] < max_seconds]
    placed = _placed(_hits_from_groove(notes, kit, int(sample_rate)), kit, int(sample_rate), seed)
    order = sorted(range(len(placed)), key=lambda k: (placed[k][0].onset.time_s, placed[k][0].onset.note))
    return [placed[k][1] for k in order]


def _mix(hits: list[_Hit], kit: Kit, sample_rate: int, seed: int | None, end: int | None = None) -> Render:
    """Place each hit's sample in its stem, choke open hats, normalise, sum the stems.

    seed None: the first matching velocity layer; an int: a seeded random one among overlaps.
    end: the render stops at that sample (what still rings there is cut).
    """
    placed = _placed(hits, kit, sample_rate, seed, end)
    if not placed:
        raise UserError(f"kit {kit.name!r} has no instrument for any note of this groove: "
                        "use a kit with kick, snare or hi-hat instruments")
    length = max(h.start + len(a) for h, a in placed)
    acc = {s: np.zeros(length, np.float64) for s in STEMS}
    for h, audio in placed:
        stem = "residual" if h.onset.drum == "other" else h.onset.drum
        acc[stem][h.start:h.start + len(audio)] += audio
    peak = np.max(np.abs(sum(acc.values())))
    stems = {s: (acc[s] * (PEAK / peak)).astype(np.float32) for s in STEMS}
    mix = stems["kick"] + stems["snare"] + stems["hihat"] + stems["residual"]
    onsets = sorted((h.onset for h, _ in placed), key=lambda o: (o.time_s, o.note))
    return Render(sample_rate, mix, stems, onsets)


def render_groove(midi_path: str | Path, kit: Kit, sample_rate: int = 48000,
                  max_seconds: float | None = None, seed: int = 0, end_s: float | None = None) -> Render:
    """Render a MIDI groove with a kit; notes at or after `max_seconds` are dropped; with end_s
    the render stops there (else when the last sound has died away).

    `seed` picks among velocity layers whose ranges overlap; the same seed gives the same audio.
    """
    notes = load_groove(midi_path)
    if max_seconds is not None:
        notes = [n for n in notes if n[0] < max_seconds]
    return _mix(_hits_from_groove(notes, kit, int(sample_rate)), kit, int(sample_rate), seed,
                None if end_s is None else round(end_s * sample_rate))


def render_hits(kit: Kit, role: str, sample_rate: int = 48000,
                velocities: tuple[int, ...] = (32, 64, 96, 127), gap_s: float = 0.25) -> Render:
    """Isolated hits of every instrument with `role`, at each velocity, one after another.

    Each hit starts `gap_s` after the previous one has fully decayed; onsets carry the role's
    GM note (kick 36, snare 38, hats 42/46/44, tom 45, cymbal 49, other 0).
    """
    drum, art = _ROLE_DRUM[role], _HAT_ARTICULATION.get(role, role)
    hits, start = [], int(round(gap_s * sample_rate))
    for inst in kit.by_role(role):
        for vel in velocities:
            onset = Onset(start / sample_rate, drum, _ROLE_NOTE[role], int(vel), art)
            hits.append(_Hit(start, inst, int(vel), onset))
            n = len(kit.sample(inst, vel / 127.0, sample_rate))
            start += n + int(round(gap_s * sample_rate))
    if not hits:
        raise UserError(f"kit {kit.name!r} has no {role} instrument: pick a role it has")
    return _mix(hits, kit, int(sample_rate), seed=None)
