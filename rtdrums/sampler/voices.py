"""The sampler's voice pool: one compiled call per block plays the block's note-ons.

All tables and state are preallocated arrays in one SamplerArrays (built by
rtdrums.sampler.build). `render_block` clears the per-drum sample buffer `smp`, then walks the
block's events in order: voices already sounding are rendered up to the sample at which the
event was decided, the event starts its voice there (so its first sample is at that position,
in this block) and chokes what it chokes, and so on to the end of the block. The result depends
only on the input stream, never on the block size. No allocation, no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# SamplerArrays.ctl
FADE, AGE, STOLEN, STARTED = range(4)


class SamplerArrays(NamedTuple):
    ctl: np.ndarray          # (4,) int64: fade length (samples), voice counter, steals, notes
    note_slot: np.ndarray    # (128,) int64: slot of a MIDI note, -1 = no sample
    slot_drum: np.ndarray    # (S,) int64: the drum (stem column) a slot plays on
    slot_level: np.ndarray   # (S,) float32 linear level
    slot_curve: np.ndarray   # (S,) float64 velocity exponent
    slot_limit: np.ndarray   # (S,) int64 voices
    slot_chokes: np.ndarray  # (S,) int64 bit mask of the slots a note of this slot cuts
    slot_layer: np.ndarray   # (S + 1,) first velocity layer of each slot
    layer_hi: np.ndarray     # (L,) float64 upper end of each layer's velocity range
    layer_rr: np.ndarray     # (L + 1,) first sound of each layer's round robin
    rr_next: np.ndarray      # (L,) int64 state: next round-robin sound
    sound_off: np.ndarray    # (M + 1,) start of each sound in data
    data: np.ndarray         # (total,) float32 every sound, gains applied
    v_sound: np.ndarray      # (P,) int64 state: the voice's sound, -1 = free
    v_pos: np.ndarray        # (P,) int64 read position
    v_gain: np.ndarray       # (P,) float32
    v_slot: np.ndarray       # (P,) int64
    v_fade: np.ndarray       # (P,) int64 samples of fade left, -1 = not fading
    v_age: np.ndarray        # (P,) int64 start order
    keep: np.ndarray         # (D,) float32: 1 = the drum's output keeps its stem (layer), 0 = replace
    smp: np.ndarray          # (max_block, D) float32 the block's samples per drum


def reset(a: SamplerArrays) -> None:
    """Silence every voice and restart every round robin."""
    a.v_sound[:] = -1
    a.v_fade[:] = -1
    a.rr_next[:] = 0
    a.ctl[AGE:] = 0


@njit(cache=True, nogil=True)
def render_block(a, ev, ne, n):
    """The sampler's output for one block of n samples into a.smp[:n], from the block's events
    ev[:ne] (EVENT_DTYPE; `decided` lies in this block, `emitted` is its end)."""
    smp = a.smp
    for i in range(n):
        for d in range(smp.shape[1]):
            smp[i, d] = 0.0
    done = 0
    for e in range(ne):
        note = ev[e]["note"]
        if note < 0 or note > 127 or a.note_slot[note] < 0:
            continue
        at = n - (ev[e]["emitted"] - ev[e]["decided"])
        at = min(max(at, done), n - 1)
        _render(a, done, at)
        done = at
        _note_on(a, a.note_slot[note], ev[e]["velocity"])
    _render(a, done, n)


@njit(cache=True, nogil=True)
def _fade_out(a, v):
    if a.v_fade[v] < 0:
        a.v_fade[v] = a.ctl[FADE]


@njit(cache=True, nogil=True)
def _note_on(a, slot, velocity):
    P = a.v_sound.shape[0]
    chokes = a.slot_chokes[slot]
    playing, oldest = 0, -1
    for v in range(P):
        s = a.v_slot[v]
        if a.v_sound[v] < 0:
            continue
        if chokes & (1 << s):
            _fade_out(a, v)
        elif s == slot and a.v_fade[v] < 0:
            playing += 1
            if oldest < 0 or a.v_age[v] < a.v_age[oldest]:
                oldest = v
    if playing >= a.slot_limit[slot]:
        _fade_out(a, oldest)
    x = (max(1, min(127, velocity)) / 127.0) ** a.slot_curve[slot]
    lay = a.slot_layer[slot + 1] - 1
    for j in range(a.slot_layer[slot], a.slot_layer[slot + 1]):
        if x <= a.layer_hi[j]:
            lay = j
            break
    k = a.rr_next[lay]
    count = a.layer_rr[lay + 1] - a.layer_rr[lay]
    a.rr_next[lay] = (k + 1) % count
    free = -1
    for v in range(P):
        if a.v_sound[v] < 0:
            free = v
            break
    if free < 0:                                   # pool full: the oldest voice stops
        free = 0
        for v in range(1, P):
            if a.v_age[v] < a.v_age[free]:
                free = v
        a.ctl[STOLEN] += 1
    a.v_sound[free] = a.layer_rr[lay] + k
    a.v_pos[free] = 0
    a.v_gain[free] = np.float32(a.slot_level[slot] * x)
    a.v_slot[free] = slot
    a.v_fade[free] = -1
    a.v_age[free] = a.ctl[AGE]
    a.ctl[AGE] += 1
    a.ctl[STARTED] += 1


@njit(cache=True, nogil=True)
def _render(a, start, stop):
    """Every sounding voice over block samples [start, stop)."""
    if stop <= start:
        return
    smp, data = a.smp, a.data
    fade_len = a.ctl[FADE]
    for v in range(a.v_sound.shape[0]):
        snd = a.v_sound[v]
        if snd < 0:
            continue
        d = a.slot_drum[a.v_slot[v]]
        off = a.sound_off[snd]
        length = a.sound_off[snd + 1] - off
        pos, g, fade = a.v_pos[v], a.v_gain[v], a.v_fade[v]
        i = start
        if fade < 0:
            m = min(stop - start, length - pos)
            for k in range(m):
                smp[start + k, d] += g * data[off + pos + k]
            pos += m
            i = start + m
        else:
            while i < stop and pos < length and fade > 0:
                smp[i, d] += g * np.float32(fade / fade_len) * data[off + pos]
                pos += 1
                fade -= 1
                i += 1
        if pos >= length or fade == 0:
            a.v_sound[v] = -1
        a.v_pos[v], a.v_fade[v] = pos, fade
