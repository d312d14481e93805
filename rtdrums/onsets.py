"""Causal trigger detection on per-drum activations.

Each frame, a drum's activation a (the sum of its components' h, in magnitude units) is compared
with its level one and two frames before. A rise above the drum's threshold opens a short scan
(as a hardware trigger module does): for `scan` frames the peak is tracked, then the note-on is
emitted with a velocity from the rise height. The threshold adapts: it is the larger of an
absolute floor and a fraction of a decaying peak envelope of the drum's own activation, divided
by the drum's sensitivity. After a trigger the drum is masked for its retrigger time.
"""

from __future__ import annotations

from numba import njit

# columns of the per-drum float state
ST_ENV, ST_PREV1, ST_PREV2, ST_PEAK, ST_BASE = 0, 1, 2, 3, 4
# columns of the per-drum int state
SI_PENDING, SI_ONSET, SI_LAST, SI_COMP = 0, 1, 2, 3
NEVER = -(1 << 60)


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
def detect(act, h, comp_start, comp_end, notes, fstate, istate, floor, rel, sens, retrig,
           reference, gamma, scan, env_decay, frame_end, onset_offset, events, n_events, dropped):
    """Update the detector with one frame's activations; append finished events.

    act (D,) activations, h (R,) component activations, frame_end the stream index one past the
    frame's newest sample. Events get onset, drum, note and velocity; the caller sets emitted.
    Returns the new number of events; overflow beyond the events array is counted in dropped[0].
    """
    D = act.shape[0]
    for d in range(D):
        a = act[d]
        base = min(fstate[d, ST_PREV1], fstate[d, ST_PREV2])
        threshold = max(floor[d], rel * fstate[d, ST_ENV]) / sens[d]
        emit = False
        if istate[d, SI_PENDING] > 0:
            if a > fstate[d, ST_PEAK]:
                fstate[d, ST_PEAK] = a
                istate[d, SI_COMP] = _strongest(h, comp_start[d], comp_end[d])
            istate[d, SI_PENDING] -= 1
            emit = istate[d, SI_PENDING] == 0
        elif a - base > threshold and frame_end - istate[d, SI_LAST] >= retrig[d]:
            istate[d, SI_PENDING] = scan
            istate[d, SI_ONSET] = frame_end - onset_offset
            istate[d, SI_LAST] = frame_end
            istate[d, SI_COMP] = _strongest(h, comp_start[d], comp_end[d])
            fstate[d, ST_PEAK] = a
            fstate[d, ST_BASE] = base
            emit = scan == 0
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
        fstate[d, ST_PREV2] = fstate[d, ST_PREV1]
        fstate[d, ST_PREV1] = a
    return n_events


@njit(cache=True, nogil=True)
def _strongest(h, start, end):
    best = start
    for r in range(start, end):
        if h[r] > h[best]:
            best = r
    return best
