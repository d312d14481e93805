"""The [sampler] table of a settings file, checked key by key (one-line errors, before any audio).

    [sampler]
    kit = "/usr/share/hydrogen/data/drumkits/ForzeeStereo"   # samples of every drum
    mode = "replace"      # replace: the sample instead of the drum's stem; layer: both
    level_db = 0.0        # added to each drum's level
    curve = 1.0           # velocity curve: x = (velocity / 127) ** curve picks the layer and gain
    voices = 8            # voice limit per drum (the oldest voice fades out)
    choke_ms = 8.0        # fade of an open hi-hat cut by a closed or pedal hi-hat
    [sampler.snare]       # per drum: kick, snare, hihat (its three articulations), hihat_closed,
    folder = "samples/snare"   # hihat_open, hihat_pedal, tom, cymbal; kit (+ instrument) or folder
    level_db = -3.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

ROLES = ("kick", "snare", "hihat_closed", "hihat_open", "hihat_pedal", "tom", "cymbal")
HIHAT = ("hihat_closed", "hihat_open", "hihat_pedal")
OUTPUT_DRUMS = ("kick", "snare", "hihat", "tom", "cymbal")     # tables that may set a mode
MODES = ("replace", "layer")
_SOURCE = ("kit", "folder", "instrument")
_VOICE = ("level_db", "curve", "voices")
_TOP = ("kit",) + _VOICE + ("mode", "choke_ms")
_DEFAULTS = {"level_db": 0.0, "curve": 1.0, "voices": 8}


@dataclass(frozen=True)
class DrumSource:
    """Where one articulation's samples come from and how its voices play."""
    role: str
    kit: Path | None
    folder: Path | None
    instrument: str | None
    level_db: float
    curve: float
    voices: int


@dataclass(frozen=True)
class SamplerSettings:
    sources: dict[str, DrumSource]     # role -> source, for every role that has one
    modes: dict[str, str]              # output drum -> replace or layer ("" key: the default)
    choke_ms: float

    def mode(self, drum: str) -> str:
        return self.modes.get(drum, self.modes[""])


def _number(v, what: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise UserError(f"{what} must be a number from {lo:g} to {hi:g}, got {v!r}")
    return float(v)


def _check_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise UserError(f"unknown key {k!r} in {where} (known: {', '.join(allowed)})")


def _path(v, what: str, base: Path) -> Path:
    if not isinstance(v, str) or not v:
        raise UserError(f"{what} must be a folder path, got {v!r}")
    p = Path(v).expanduser()
    return p if p.is_absolute() else base / p


def parse_sampler(table: dict, base: Path, where: str = "[sampler]") -> SamplerSettings:
    """SamplerSettings from the [sampler] table; relative paths are taken from `base` (the
    settings file's folder)."""
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table")
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    top = {k: v for k, v in table.items() if not isinstance(v, dict)}
    for k in tables:
        if k not in ROLES and k != "hihat":
            raise UserError(f"unknown drum [sampler.{k}] (known: {', '.join(('kick', 'snare', 'hihat') + ROLES[2:])})")
    _check_keys(top, _TOP, where)
    for k, t in tables.items():
        allowed = _SOURCE + _VOICE + (("mode",) if k in OUTPUT_DRUMS else ())
        _check_keys(t, allowed, f"[sampler.{k}]" + ("" if "mode" in allowed else
                                                   " (the mode is set per drum: [sampler.hihat])"))
    modes = {"": top.get("mode", "replace")}
    for k, t in tables.items():
        if "mode" in t:
            modes[k] = t["mode"]
    for k, m in modes.items():
        if m not in MODES:
            raise UserError(f"mode in [sampler{'.' + k if k else ''}] must be replace or layer, got {m!r}")
    choke = _number(top.get("choke_ms", 8.0), "choke_ms in [sampler]", 0.1, 200.0)

    sources = {}
    for role in ROLES:
        own = {**tables.get("hihat", {}), **tables.get(role, {})} if role in HIHAT else tables.get(role, {})
        if "kit" in own or "folder" in own:          # a drum's own source replaces the general kit
            merged = {**_DEFAULTS, **{k: v for k, v in top.items() if k != "kit"}, **own}
        else:
            merged = {**_DEFAULTS, **top, **own}
        if "kit" in merged and "folder" in merged:
            raise UserError(f"{where} {role}: give kit or folder, not both")
        if "kit" not in merged and "folder" not in merged:
            continue
        name = f"[sampler.{role}]" if role in tables else where
        level = _number(merged["level_db"], f"level_db for {role}", -120.0, 24.0)
        curve = merged["curve"]
        if isinstance(curve, bool) or not isinstance(curve, (int, float)) or not math.isfinite(curve) \
                or not 0.1 <= curve <= 10:
            raise UserError(f"velocity curve for {role} must be an exponent from 0.1 to 10 "
                            f"(1 = linear, 2 = softer low velocities), got {curve!r}")
        voices = merged["voices"]
        if isinstance(voices, bool) or not isinstance(voices, int) or not 1 <= voices <= 64:
            raise UserError(f"voices for {role} must be a whole number from 1 to 64, got {voices!r}")
        inst = merged.get("instrument")
        if inst is not None and (not isinstance(inst, str) or not inst):
            raise UserError(f"instrument for {role} in {name} must be an instrument's name, got {inst!r}")
        sources[role] = DrumSource(
            role, _path(merged["kit"], f"kit for {role}", base) if "kit" in merged else None,
            _path(merged["folder"], f"folder for {role}", base) if "folder" in merged else None,
            inst, level, float(curve), voices)
    if not sources:
        raise UserError(f"{where} names no samples: set kit = \"KIT_FOLDER\" or folder = \"FOLDER\" "
                        f"(for all drums or in [sampler.kick] etc.)")
    return SamplerSettings(sources, modes, choke)
