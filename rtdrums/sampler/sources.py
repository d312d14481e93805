"""Loading a drum's samples: velocity layers, each a list of round-robin sounds, float32 mono at
the stream rate with the hit's onset at index 0.

From a Hydrogen kit (rtdrums.training.kits reads drumkit.xml): the instrument named by
`instrument`, else the kit's first instrument of the drum's role (a kit without a pedal hi-hat
plays its closed one). Its layers' velocity ranges are Hydrogen's; layers with the same range
are played in turn (round robin).

From a folder: every WAV/FLAC/OGG/AIFF file in it, in name order, quietest layer first. Files
whose names differ only by a trailing `_rrN` (or `-rrN`) are one layer's round-robin sounds,
played in N order; the layers share the velocity range equally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import read_audio, resample, to_mono
from ..errors import UserError
from ..training.kits import ONSET_DB, Kit, first_within, load_kit
from .settings import DrumSource

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
_RR = re.compile(r"[_-]rr(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class VelocityLayer:
    lo: float                          # velocity range in 0..1 (after the curve)
    hi: float
    sounds: tuple[np.ndarray, ...]     # round-robin sounds, gains applied


def load_layers(src: DrumSource, sample_rate: int, kits: dict[Path, Kit]) -> list[VelocityLayer]:
    """The velocity layers of one drum, sorted by range; `kits` caches kits across drums."""
    if src.kit is not None:
        if src.kit not in kits:
            kits[src.kit] = load_kit(src.kit)
        return kit_layers(kits[src.kit], src.role, src.instrument, sample_rate)
    return folder_layers(src.folder, src.role, sample_rate)


def kit_layers(kit: Kit, role: str, instrument: str | None, sample_rate: int) -> list[VelocityLayer]:
    if instrument is not None:
        inst = kit.instrument(instrument)
    else:
        found = kit.by_role(role) or (kit.by_role("hihat_closed") if role == "hihat_pedal" else [])
        if not found:
            have = ", ".join(f"{i.name} ({i.role})" for i in kit.instruments)
            raise UserError(f"kit {kit.path} has no {role} instrument (it has {have}): set "
                            f"[sampler.{role}] instrument = \"NAME\", or give that drum a folder")
        inst = found[0]
    missing = [s for s in kit.skipped if s.startswith(repr(inst.name))]
    if missing:
        raise UserError(f"kit {kit.path}: {missing[0]}; restore the file or pick another instrument")
    groups: dict[tuple[float, float], list[np.ndarray]] = {}
    for ly in inst.layers:
        audio = kit.layer_audio(ly, sample_rate) * np.float32(ly.gain * inst.gain)
        if audio.size:
            groups.setdefault((ly.min, ly.max), []).append(np.ascontiguousarray(audio, np.float32))
    if not groups:
        raise UserError(f"kit {kit.path}: instrument {inst.name!r} has only silent samples; pick another")
    return [VelocityLayer(lo, hi, tuple(s)) for (lo, hi), s in sorted(groups.items())]


def folder_layers(folder: Path, role: str, sample_rate: int) -> list[VelocityLayer]:
    if not folder.is_dir():
        raise UserError(f"sample folder for {role} not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"sample folder {folder} for {role} has no WAV, FLAC, OGG or AIFF file")
    groups: dict[str, list[tuple[int, Path]]] = {}
    for p in files:
        m = _RR.search(p.stem)
        key = p.stem[:m.start()] if m else p.stem
        groups.setdefault(key.lower(), []).append((int(m.group(1)) if m else 0, p))
    layers = []
    for i, members in enumerate(groups.values()):
        sounds = tuple(_read(p, sample_rate) for _, p in sorted(members))
        layers.append(VelocityLayer(i / len(groups), (i + 1) / len(groups), sounds))
    return layers


def _read(path: Path, sample_rate: int) -> np.ndarray:
    data, rate = read_audio(path)
    x = resample(to_mono(data), rate, sample_rate)
    if not np.any(x):
        raise UserError(f"sample {path} is silent; remove it from the folder")
    return np.ascontiguousarray(x[first_within(x, ONSET_DB):], np.float32)
