"""Why a trigger fired falsely or missed a hit: each error attributed to a sound of the mixture.

Sources are the true onsets of a mixture, each with a label: kick, snare or hihat for the drums,
and for a residual sound (render drum "other") its articulation class: tom (high, mid, low), crash
(crash, china, splash), ride (ride, bell) or other. Times are in seconds.

A false trigger of drum d (an estimate left unmatched at 50 ms) with estimated onset t goes to
  1. the source whose onset s is nearest t with t - 30 ms <= s <= t + 10 ms (ATTACK_WINDOW):
     a hit of d itself -> "double" (the hit was detected twice), another source -> its label;
  2. else a hit of d with t - 150 ms <= s < t - 30 ms (RING_WINDOW) -> "double" (a retrigger on
     the ring of d's own hit, once the retrigger time has passed);
  3. else "none" (nothing began near it: a decaying cymbal, noise, the room).
Why these windows: an estimate lies within a few ms of the attack that drove it (bleed of another
drum's attack measured at -7 to +4 ms with the shipped preset on HardElectro1 and ForzeeStereo);
30 ms back leaves room for soft attacks and trigger scan windows and stays under half the spacing
of 16th notes at 120 bpm (125 ms), so a neighbouring note is not blamed; 10 ms ahead covers
estimates that run a frame or two early (the trigger's look-back). The ring window starts where
the attack window ends and spans the retrigger time (50 ms by default) plus the ring of a drum.
An attack (rule 1) wins over a ring (rule 2): the sharper event is the likelier cause.

A missed hit of d at s (unmatched at 50 ms) is "alone" when no other source begins within
+-20 ms (SIMULTANEOUS); else the loudest of those sources over [s, s + 30 ms) (LEVEL_WINDOW,
energy of its stem) masks it if louder than d's own stem there -> that source's label; otherwise
"beside_quieter". Levels need the true stems (renders); with annotations alone misses get no cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATTACK_WINDOW = (-0.030, 0.010)     # source onset minus estimated onset, seconds
RING_WINDOW = (-0.150, -0.030)      # own earlier hit, seconds before the estimate
SIMULTANEOUS = 0.020                # |other onset - missed onset|, seconds
LEVEL_WINDOW = 0.030                # stem energy measured over [s, s + this)
DRUMS = ("kick", "snare", "hihat")
RESIDUAL_CLASSES = ("tom", "crash", "ride", "other")
FALSE_CAUSES = ("double",) + DRUMS + RESIDUAL_CLASSES + ("none",)
MISS_CAUSES = ("alone", "beside_quieter") + DRUMS + RESIDUAL_CLASSES
_CLASS = {"tom_high": "tom", "tom_mid": "tom", "tom_low": "tom", "crash": "crash", "china": "crash",
          "splash": "crash", "ride": "ride", "ride_bell": "ride"}


def source_label(drum: str, articulation: str = "") -> str:
    """kick/snare/hihat for a drum, the articulation class for a residual sound."""
    return drum if drum in DRUMS else _CLASS.get(articulation, "other")


def _stem(label: str) -> str:
    return label if label in DRUMS else "residual"


@dataclass(frozen=True)
class Sources:
    """The true onsets of a mixture with their labels (sorted by time), and optionally the true
    stems (kick, snare, hihat, residual) at sample_rate to compare levels."""
    times: np.ndarray
    labels: tuple[str, ...]
    stems: dict[str, np.ndarray] | None = None
    sample_rate: int | None = None

    @classmethod
    def from_render(cls, render) -> "Sources":
        """Every onset of a rtdrums.training.render.Render, with its stems."""
        return cls(np.array([o.time_s for o in render.onsets], float),
                   tuple(source_label(o.drum, o.articulation) for o in render.onsets),
                   render.stems, render.sample_rate)

    @classmethod
    def from_annotations(cls, annotations: dict[str, np.ndarray]) -> "Sources":
        """Annotated onsets per drum (no stems: misses get no cause)."""
        pairs = sorted((float(t), d) for d, ts in annotations.items() for t in np.ravel(ts))
        return cls(np.array([t for t, _ in pairs], float), tuple(d for _, d in pairs))

    def _level(self, label: str, start: float) -> float:
        x = self.stems[_stem(label)]
        i = int(round(start * self.sample_rate))
        seg = np.asarray(x[max(i, 0):max(i + int(LEVEL_WINDOW * self.sample_rate), 0)], np.float64)
        return float(np.dot(seg, seg))


def false_trigger_cause(drum: str, t: float, sources: Sources) -> str:
    """The cause of a false trigger of drum at estimated onset t (see the module docstring)."""
    s, labels = sources.times, sources.labels
    lo, hi = np.searchsorted(s, t + ATTACK_WINDOW[0], "left"), np.searchsorted(s, t + ATTACK_WINDOW[1], "right")
    if hi > lo:
        k = lo + int(np.argmin(np.abs(s[lo:hi] - t)))
        return "double" if labels[k] == drum else labels[k]
    lo = np.searchsorted(s, t + RING_WINDOW[0], "left")
    hi = np.searchsorted(s, t + RING_WINDOW[1], "left")
    return "double" if any(labels[k] == drum for k in range(lo, hi)) else "none"


def miss_cause(drum: str, t: float, sources: Sources) -> str | None:
    """The cause of a missed hit of drum with true onset t; None without stems."""
    if sources.stems is None:
        return None
    s, labels = sources.times, sources.labels
    lo, hi = np.searchsorted(s, t - SIMULTANEOUS, "left"), np.searchsorted(s, t + SIMULTANEOUS, "right")
    others = {labels[k] for k in range(lo, hi) if labels[k] != drum}
    if not others:
        return "alone"
    own = sources._level(drum, t)
    loud = max(others, key=lambda lab: (sources._level(lab, t), lab))
    return loud if sources._level(loud, t) > own else "beside_quieter"


def count(causes, keys: tuple[str, ...]) -> dict[str, int]:
    """Counts per key, in the order of keys (every key present)."""
    out = dict.fromkeys(keys, 0)
    for c in causes:
        out[c] += 1
    return out
