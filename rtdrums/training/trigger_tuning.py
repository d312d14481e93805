"""Tuning each drum's trigger settings on grooves rendered from the kit a preset was trained on.

Training has the kit's own samples, so it can render drum mixtures with exact onsets (the
training-split grooves of the Groove MIDI Dataset shipped in rtdrums/data/grooves/train) and see
how its triggers do on them. The engine runs each mixture once while every frame's activations
are recorded; the trigger detector, which sees nothing but those, is then replayed over a grid of
per-drum settings (relative threshold, cross-talk margin, lookback). Each drum keeps the setting
with the best objective: the onset F-measure at 50 ms with precision weighted over recall (F_beta,
BETA), averaged over each kit's mixtures (so that no one dense groove decides) and taken from the
kit it fits worst (a preset for several kits must not give up one of them), minus LATENCY_COST per
millisecond of median trigger latency: a higher threshold can catch fewer cross-talk triggers only
by firing later in every hit's rise, and a drummer feels the difference. Settings whose objective
is within TIE of the best count as equally good, and of those the one closest to where the drum
started (the base preset's settings) is kept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from numba import njit

from ..dsp.adapt import with_adaptation
from ..engine import Engine, detect_step
from ..tables import detector_state, trigger_settings
from ..evaluation.metrics import counts_to_prf
from ..events import EVENT_DTYPE
from ..offline import activation_trace
from ..preset import DrumSettings, Preset

GRID = {
    "relative": (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6),
    # margins above 8 were best on the kits tuned on by a hair, and silenced the snare of kits
    # whose cross-talk differs from the measured one (electronic kits under the default preset)
    "crosstalk": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
    "lookback_ms": (5.4, 10.7, 16.0, 21.3),
}
WINDOW_S = 0.05         # onset tolerance of the F-measure, as in the evaluation
BETA = 0.5              # the tuned F-measure weighs precision over recall: on stage a phantom
                        # snare is worse than a missed ghost note
LATENCY_COST = 0.005    # F-measure a setting may give up per millisecond earlier trigger
TIE = 0.01              # objectives this close to the best count as equal: the settings nearest
                        # to the preset's own are kept (the optimum is often a flat plateau whose
                        # far edge holds only for the kits tuned on)
GROOVE_SECONDS = 30.0   # of each training groove


@dataclass(frozen=True)
class Take:
    """One rendered mixture as the detector sees it: activations per frame and true onsets."""
    act: np.ndarray                 # (frames, drums + 1) group activations
    h: np.ndarray                   # (frames, R) component activations
    onsets: tuple[np.ndarray, ...]  # per drum: true onset sample indices, sorted
    kit: str = ""                   # the kit it was rendered with


@dataclass(frozen=True)
class DrumScore:
    f: float                        # pooled over the takes
    precision: float
    recall: float
    latency_ms: float               # median, emitted minus true onset, of the matched triggers
    worst_f_beta: float             # over the kits, the lowest mean of a kit's takes' F_beta (BETA)

    @property
    def objective(self) -> float:
        return self.worst_f_beta - LATENCY_COST * self.latency_ms


def record(engine: Engine, mix: np.ndarray, onsets_by_drum: Sequence[np.ndarray], kit: str = "") -> Take:
    """Run the engine over a mixture from a fresh start, recording what the detector sees."""
    act, h = activation_trace(engine, mix, components=True)
    return Take(act, h, tuple(np.sort(np.asarray(o, np.int64)) for o in onsets_by_drum), kit)


def render_takes(engine: Engine, kits: Sequence, grooves: Sequence,
                 seconds: float = GROOVE_SECONDS, progress: Callable[[], None] | None = None,
                 rooms: float = 0.0) -> list[Take]:
    """Every groove rendered with every kit at the engine's rate, recorded; a share `rooms` of
    the takes as recordings in rooms (rtdrums.training.rooms.maybe_vary, each take its own seed)."""
    from .render import render_groove
    from .rooms import maybe_vary

    takes = []
    for kit in kits:
        for groove in grooves:
            r = render_groove(groove, kit, engine.sample_rate, max_seconds=seconds)
            r = maybe_vary(r, len(takes), rooms)
            takes.append(record(engine, r.mix, [r.samples(d) for d in engine.drum_names], kit.name))
            if progress:
                progress()
    return takes


def score(engine: Engine, takes: Sequence[Take], preset: Preset | None = None) -> list[DrumScore]:
    """Onset scores per drum over all takes with the trigger settings of `preset` (or the engine's)."""
    tables = engine.tables._replace(**trigger_settings(preset or engine.preset, engine.settings))
    D = len(engine.drum_names)
    counts = np.zeros((len(takes), D, 3), np.int64)
    latencies: list[list[float]] = [[] for _ in range(D)]
    for k, take in enumerate(takes):
        _score_take(engine, tables, take, counts[k], latencies)
    kits = [take.kit for take in takes]
    return [_drum_score(counts[:, d], kits, latencies[d], engine.sample_rate) for d in range(D)]


def tune_triggers(preset: Preset, takes: Sequence[Take], engine: Engine | None = None,
                  progress: Callable[[], None] | None = None,
                  margins: bool = True) -> tuple[Preset, list[DrumScore]]:
    """The preset with each drum's relative, crosstalk and lookback_ms tuned on the takes.

    Drum by drum (kick, snare, hi-hat), the whole grid, the other drums as tuned so far: a drum's
    lookback also sets how its rises count as cross-talk in the others. With margins=False the
    cross-talk margins stay as they are (see train.tune). Returns the tuned preset with the scores
    it reaches on the takes.
    """
    engine = engine or Engine(with_adaptation(preset, False))
    names = tuple(GRID) if margins else tuple(k for k in GRID if k != "crosstalk")
    grid = [dict(zip(names, v)) for v in itertools.product(*(GRID[k] for k in names))]
    scores = score(engine, takes, preset)
    for d in range(len(preset.drums)):
        tried = [(scores, preset)]
        for setting in grid:
            drums = list(preset.drums)
            drums[d] = replace(drums[d], **setting)
            candidate = replace(preset, drums=tuple(drums))
            tried.append((score(engine, takes, candidate), candidate))
            if progress:
                progress()
        best = max(s[d].objective for s, _ in tried)
        start = preset.drums[d]
        scores, preset = min((t for t in tried if t[0][d].objective >= best - TIE),
                             key=lambda t: _distance(t[1].drums[d], start))
    return preset, scores


def _distance(a: DrumSettings, b: DrumSettings) -> float:
    """How far apart two drums' tuned settings are, in log ratios."""
    return sum(abs(np.log(max(getattr(a, k), 1e-3) / max(getattr(b, k), 1e-3))) for k in GRID)


def grid_size(drums: int = 3, margins: bool = True) -> int:
    """Settings tune_triggers tries (its progress steps)."""
    return drums * int(np.prod([len(v) for k, v in GRID.items() if margins or k != "crosstalk"]))


def _score_take(engine: Engine, tables, take: Take, counts: np.ndarray, latencies: list) -> None:
    events = np.zeros(max(64, 4 * sum(len(o) for o in take.onsets) + 64), EVENT_DTYPE)
    n = _replay(take.act, take.h, tables, engine.params, *detector_state(tables), events)
    ev = events[:n]
    window = int(round(WINDOW_S * engine.sample_rate))
    for d, ref in enumerate(take.onsets):
        mine = ev[ev["drum"] == d]
        order = np.argsort(mine["onset"], kind="stable")
        est, emitted = mine["onset"][order], mine["emitted"][order]
        lat = np.zeros(len(ref), np.int64)
        matched = _match(ref, est, emitted, window, lat)
        counts[d] += (len(ref), len(est), matched)
        latencies[d].extend(lat[:matched].tolist())


def _drum_score(counts: np.ndarray, kits: list[str], lat: list[float], sample_rate: int) -> DrumScore:
    """counts (takes, 3): true, detected and matched onsets per take; kits: each take's kit."""
    pooled = counts_to_prf(*(int(x) for x in counts.sum(axis=0)))
    per_kit: dict[str, list[float]] = {}
    for c, kit in zip(counts, kits):
        if c[0] or c[1]:
            per_kit.setdefault(kit, []).append(counts_to_prf(*(int(x) for x in c), beta=BETA)["f"])
    worst = min((float(np.mean(v)) for v in per_kit.values()), default=1.0)
    med = float(np.median(lat)) * 1000 / sample_rate if lat else 1e3
    return DrumScore(pooled["f"], pooled["precision"], pooled["recall"], med, worst)


@njit(cache=True, nogil=True)
def _match(ref, est, emitted, window, lat):
    """Greedy one-to-one matching of sorted onsets within +-window samples (maximal on a line).

    Writes emitted minus reference of each match into lat; returns the number of matches.
    """
    j, m = 0, 0
    for i in range(ref.shape[0]):
        while j < est.shape[0] and est[j] < ref[i] - window:
            j += 1
        if j < est.shape[0] and est[j] <= ref[i] + window:
            lat[m] = emitted[j] - ref[i]
            m += 1
            j += 1
    return m


@njit(cache=True, nogil=True)
def _replay(act, h, T, P, fstate, istate, history, dropped, events):
    """The engine's detector (tables T, params P) over recorded frames, from the given state
    (fresh from engine.detector_state). Returns the event count."""
    n = 0
    for m in range(act.shape[0]):
        n = detect_step(T, P, act[m], h[m], fstate, istate, history, dropped, (m + 1) * P.hop, events, n)
    return n
