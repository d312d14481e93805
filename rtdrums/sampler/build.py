"""The sampler's tables for one preset at one stream rate (loaded once, before audio runs)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..training.kits import GM_ROLES
from .settings import HIHAT, ROLES, SamplerSettings
from .sources import load_layers
from .voices import FADE, SamplerArrays, reset

CHOKES = {"hihat_closed": ("hihat_open",), "hihat_pedal": ("hihat_open",)}


def note_roles(preset) -> list[tuple[int, int, str]]:
    """(drum index, MIDI note, role) of every note the preset's triggers send."""
    out = []
    for d, drum in enumerate(preset.drums):
        labels = drum.labels if len(drum.labels) == len(drum.notes) else ("",) * len(drum.notes)
        for label, note in zip(labels, drum.notes):
            role = label if label in ROLES else GM_ROLES.get(int(note))
            if role in ROLES and (d, int(note), role) not in out:
                out.append((d, int(note), role))
    return out


def output_drum(role: str) -> str:
    return "hihat" if role in HIHAT else role


def build_sampler(settings: SamplerSettings | None, preset, sample_rate: int,
                  max_block: int) -> SamplerArrays:
    """Samples loaded, resampled and laid out in flat arrays, voices silent; with settings None a
    sampler that plays nothing."""
    D = len(preset.drums)
    slots: list[tuple[int, str]] = []            # (drum, role)
    note_slot = np.full(128, -1, np.int64)
    for d, note, role in note_roles(preset) if settings else []:
        if role not in settings.sources:
            continue
        if (d, role) not in slots:
            slots.append((d, role))
        note_slot[note] = slots.index((d, role))
    kits: dict = {}
    layers_of = {role: load_layers(settings.sources[role], sample_rate, kits)
                 for role in dict.fromkeys(r for _, r in slots)}
    slot_layer, layer_hi, layer_rr, sound_off, sounds = [0], [], [0], [0], []
    for _, role in slots:
        for ly in layers_of[role]:
            layer_hi.append(ly.hi)
            for s in ly.sounds:
                sounds.append(s)
                sound_off.append(sound_off[-1] + len(s))
            layer_rr.append(len(sounds))
        slot_layer.append(len(layer_hi))
    roles = [r for _, r in slots]
    chokes = [sum(1 << roles.index(c) for c in CHOKES.get(r, ()) if c in roles) for r in roles]
    limits = [settings.sources[r].voices for r in roles]
    pool = max(1, sum(limits) + len(slots))      # + room for the voices fading out
    keep = np.ones(D, np.float32)
    for d, drum in enumerate(preset.drums):
        if settings and any(sd == d for sd, _ in slots) and settings.mode(drum.name) == "replace":
            keep[d] = 0.0
    a = SamplerArrays(
        ctl=np.zeros(4, np.int64), note_slot=note_slot,
        slot_drum=np.array([d for d, _ in slots] or [0], np.int64),
        slot_level=np.array([10 ** (settings.sources[r].level_db / 20) for r in roles] or [0], np.float32),
        slot_curve=np.array([settings.sources[r].curve for r in roles] or [1], np.float64),
        slot_limit=np.array(limits or [1], np.int64), slot_chokes=np.array(chokes or [0], np.int64),
        slot_layer=np.array(slot_layer, np.int64), layer_hi=np.array(layer_hi or [1], np.float64),
        layer_rr=np.array(layer_rr if layer_hi else [0, 1], np.int64),
        rr_next=np.zeros(max(1, len(layer_hi)), np.int64),
        sound_off=np.array(sound_off if sounds else [0, 1], np.int64),
        data=np.concatenate(sounds) if sounds else np.zeros(1, np.float32),
        v_sound=np.zeros(pool, np.int64), v_pos=np.zeros(pool, np.int64),
        v_gain=np.zeros(pool, np.float32), v_slot=np.zeros(pool, np.int64),
        v_fade=np.zeros(pool, np.int64), v_age=np.zeros(pool, np.int64),
        keep=keep, smp=np.zeros((max_block, D), np.float32))
    reset(a)
    a.ctl[FADE] = max(1, round((settings.choke_ms if settings else 8.0) * sample_rate / 1000))
    if settings and not slots:
        raise UserError(f"[sampler] has samples for {', '.join(settings.sources)} but the preset "
                        f"{preset.name} triggers none of them ({', '.join(sorted({r for _, _, r in note_roles(preset)}))})")
    return a
