"""Causal trigger detection on per-drum activations.

Each frame, the activation of each articulation of a drum (its components trained on one kind of
stroke: closed, open or pedal hi-hat) is compared with its lowest level over the drum's own
lookback (a hit's energy can take several milliseconds to build up, a hi-hat's more than a
kick's); the drum's rise is the sum of its articulations' rises. Summing per articulation
matters when one stroke replaces another: a closed hi-hat struck into a ringing open one raises
the closed components while the open ones fall, and the drum's total may not rise at all. Within
one articulation the net rise counts: components of one stroke trade energy from frame to frame,
and summing their separate rises would turn that trading into phantom hits.

A rise above the drum's threshold opens a short scan (as a hardware trigger module does): for
the drum's `scan` frames the peak is tracked, then the note-on is emitted with a velocity from the
rise height and the note of the strongest component. After a trigger the drum is masked for its
retrigger time.

The threshold is the largest of an absolute floor, a fraction of a decaying peak envelope of the
drum's own activation, and the cross-talk expected from the other groups, divided by the drum's
sensitivity; the activation must also jump to `jump` times its earlier level (a hi-hat ringing
under a cymbal's leakage still jumps when it is struck).

Cross-talk: a snare's body moves the kick's activation a little, its wires the hi-hat's, a cymbal
the hi-hat's. Training measures how much a hit of each group (the drums, then the residual: toms,
cymbals) raises every other group (`leak`, relative to full-velocity references). A rise no larger
than the drum's `crosstalk` margin times the leak expected from the other groups' recent rises is not a hit. Groups
that do not leak into a drum (a kick under a hi-hat) do not mask it, and a group's rise counts
only beyond what the drum's own rise explains (a snare hit also moves the tom templates; that
must not mask the snare).
"""
from __future__ import annotations

import numpy as np
from numba import njit

# columns of the per-group float state
ST_ENV, ST_PEAK, ST_BASE, ST_HELD, ST_RISE = 0, 1, 2, 3, 4
N_FSTATE = 5
HELD_DECAY = 0.92    # per frame: another drum's rise masks cross-talk for a few frames
# columns of the per-drum int state
SI_PENDING, SI_ONSET, SI_LAST, SI_COMP = 0, 1, 2, 3
N_ISTATE = 4
NEVER = -(1 << 60)


def new_state(groups: int, articulations: int, lookback: int):
    """A fresh detector state: fstate (groups, N_FSTATE), istate (drums, N_ISTATE), history
    (articulations, lookback) and the dropped-event count (1,)."""
    state = (np.zeros((groups, N_FSTATE)), np.zeros((groups - 1, N_ISTATE), np.int64),
             np.zeros((articulations, lookback)), np.zeros(1, np.int64))
    reset_state(*state)
    return state


def reset_state(fstate, istate, history, dropped) -> None:
    """Forget every hit: the state new_state returns."""
    for a in (fstate, istate, history, dropped):
        a[...] = 0
    istate[:, SI_LAST] = NEVER


@njit(cache=True, nogil=True)
def velocity_from_rise(rise, reference, gamma):
    """MIDI velocity 1..127 for a rise of the activation, relative to a full-velocity rise."""
    x = rise / reference if reference > 0.0 else 0.0
    if x <= 0.0:
        return 1
    v = 127.0 * x ** gamma
    if v < 1.0:
        return 1
    if v > 127.0:
        return 127
    return int(v + 0.5)


@njit(cache=True, nogil=True)
def detect(act, h, group_start, art_start, group_art, notes, fstate, istate, history, lookback,
           floor, rel, sens, retrig, reference, leak, gamma, scan, env_decay, crosstalk, jump,
           frame_end, frame_hop, onset_offset, events, n_events, dropped):
    """Update the detector with one frame's activations; append finished events.

    act (G,) activations of the drums, then the residual; h (R,) component activations, those of
    group g in group_start[g]:group_start[g + 1] (the strongest sets the note); articulation a
    (components trained on one kind of stroke, with one MIDI note) holds components
    art_start[a]:art_start[a + 1], group g articulations group_art[g]:group_art[g + 1];
    history (A, L) the articulations' previous activations (a ring indexed by frame count);
    lookback (G,) how many of them each group's rises are measured over; rel (D,) relative
    thresholds; reference (G,) full-velocity rises; leak (G, G) the rise of group j per unit rise
    of group g (relative to their references); crosstalk (D,) margins on the cross-talk expected
    from that leak; frame_end the stream index one past the frame's newest sample.
    Events get onset, drum, note and velocity; the caller sets emitted.
    Returns the new number of events; overflow beyond the events array is counted in dropped[0].
    """
    G = act.shape[0]
    D = G - 1
    slot = frame_end // max(1, frame_hop) % history.shape[1]
    for g in range(G):                 # recent rise of each group: the sum of its strokes' rises
        rise = 0.0
        for a in range(group_art[g], group_art[g + 1]):
            level = _level(h, art_start, a)
            low = _lowest(history, a, slot, lookback[g])
            if level > low:
                rise += level - low
        fstate[g, ST_RISE] = rise
        fstate[g, ST_HELD] = max(rise / reference[g], fstate[g, ST_HELD] * HELD_DECAY)
    for d in range(D):
        a = act[d]
        base = a - fstate[d, ST_RISE]
        expected = 0.0
        own = fstate[d, ST_HELD] if fstate[d, ST_HELD] > 0.0 else 0.0
        for g in range(G):
            if g != d:
                excess = fstate[g, ST_HELD] - leak[d, g] * own
                if excess > 0.0:
                    expected += leak[g, d] * excess
        threshold = max(floor[d], rel[d] * fstate[d, ST_ENV], crosstalk[d] * expected * reference[d]) / sens[d]
        emit = False
        if istate[d, SI_PENDING] > 0:
            if a > fstate[d, ST_PEAK]:
                fstate[d, ST_PEAK] = a
                istate[d, SI_COMP] = _strongest(h, group_start[d], group_start[d + 1])
            istate[d, SI_PENDING] -= 1
            emit = istate[d, SI_PENDING] == 0
        elif a - base > threshold and a > jump * base and frame_end - istate[d, SI_LAST] >= retrig[d]:
            istate[d, SI_PENDING] = scan[d]
            istate[d, SI_ONSET] = frame_end - onset_offset
            istate[d, SI_LAST] = frame_end
            istate[d, SI_COMP] = _strongest(h, group_start[d], group_start[d + 1])
            fstate[d, ST_PEAK] = a
            fstate[d, ST_BASE] = base
            emit = scan[d] == 0
        if emit:
            if n_events < events.shape[0]:
                e = events[n_events]
                e["onset"] = istate[d, SI_ONSET]
                e["emitted"] = frame_end
                e["drum"] = d
                e["note"] = notes[istate[d, SI_COMP]]
                e["velocity"] = velocity_from_rise(fstate[d, ST_PEAK] - fstate[d, ST_BASE],
                                                   reference[d], gamma)
                n_events += 1
            else:
                dropped[0] += 1
        env = fstate[d, ST_ENV] * env_decay
        fstate[d, ST_ENV] = a if a > env else env
    for a in range(history.shape[0]):
        history[a, slot] = _level(h, art_start, a)
    return n_events


@njit(cache=True, nogil=True)
def _level(h, art_start, a):
    """Activation of articulation a: the sum of its components."""
    acc = 0.0
    for r in range(art_start[a], art_start[a + 1]):
        acc += h[r]
    return acc


@njit(cache=True, nogil=True)
def _lowest(history, g, slot, count):
    """Lowest of the `count` activations before the one that will be stored at `slot`."""
    L = history.shape[1]
    low = history[g, (slot - 1) % L]
    for i in range(2, count + 1):
        v = history[g, (slot - i) % L]
        if v < low:
            low = v
    return low


@njit(cache=True, nogil=True)
def _strongest(h, start, end):
    best = start
    for r in range(start, end):
        if h[r] > h[best]:
            best = r
    return best
