"""The learned trigger's velocity read-out: a linear loudness score and a monotone curve per articulation.

What velocity is in the training renders (rtdrums.training.render, kits): a MIDI velocity picks a
sample layer (a louder, brighter recording) and scales it by (velocity / 127) ** 1.5. The features
are log levels, so the log of the velocity, not the velocity, is linear in them; the layers add
steps, and a kit's open, closed and pedal hi-hat are recorded at levels of their own. A single
linear read-out of velocity / 127 (the model before vel_map) fits a straight line through that
curve: it compresses the loud end and the soft end and mixes the articulations' levels.

So the read-out is fitted in two steps on the training hits the trigger finds:
1. a ridge regression of log(velocity / 127) on the decision frame's own standardised levels (its
   bands, activations and short-window bands; not their changes over the last frames, which tell
   an onset but add noise to its level): a loudness score;
2. per articulation (the one the detector chooses), the monotone (isotonic) regression of
   velocity / 127 on that score, kept as KNOTS points of a piecewise-linear curve (flat beyond the
   end points), so the score's scale, the layers' steps and the articulation's level are undone
   by a curve the compiled detector evaluates in a few operations (onset_model.mapped_velocity).
An articulation with fewer than MIN_HITS training hits uses its drum's curve over all of them.

Measured on the fixture kit's calibrated network (docs/velocity.md; decisions on 40 model grooves,
r on the validation grooves): the old read-out (all features, velocity / 127) refitted there gave
kick / snare / hi-hat r 0.85 / 0.87 / 0.84; the log target and curves 0.90 / 0.88 / 0.84; the
frame's own levels instead of all features 0.94 / 0.90 / 0.87 (ridge 30).

In an ensemble each network has a read-out of its own: the score reads, besides the frame's own
levels, that network's hidden units (after the ReLU), standardised and shrunk HIDDEN_WEIGHT times
(four times the ridge's penalty); the engine averages the K networks' velocities. The hidden
units are nonlinear functions of all the features, the frame's changes over the last frames
too, which a linear read-out of the levels cannot form; the K networks' differ, so the mean of
K such read-outs is richer than one read-out of the levels and steadier than any one: on six
allowed kits' soundcheck presets (validation grooves, `rtdrums eval`) kick / snare / hi-hat r
0.833 / 0.832 / 0.792 -> 0.853 / 0.841 / 0.819 on average; one network's read-out alone is worse
than the levels' (docs/velocity.md, 2026-12-08).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

KNOTS = 16           # points of each curve
MIN_HITS = 20        # an articulation's own curve needs this many training hits
RIDGE = 30.0         # the ridge's penalty on standardised features
HIDDEN_WEIGHT = 0.5  # the hidden units' scale in the ridge after standardising: 1 / 0.5^2 = 4 times the penalty
FLOOR = 1.0 / 127    # log of velocity 1 at least


class Readout(NamedTuple):
    """One drum's read-out: score = feat @ w + hidden @ wh + b; curves (articulations, 2, KNOTS);
    wh is empty for a read-out of the features alone."""
    w: np.ndarray
    b: float
    curves: np.ndarray
    wh: np.ndarray = np.zeros(0)


def fit_readout(X: np.ndarray, velocity: np.ndarray, articulation: np.ndarray,
                articulations: range, ridge: float = RIDGE, columns: int | None = None,
                hidden: np.ndarray | None = None) -> Readout:
    """The read-out of one drum from the standardised features X (n, F) of its decision frames on
    true hits, their MIDI velocities (n,) and the articulation (n,) the detector chose for each,
    one of `articulations` (the drum's range of articulation indices). Only the first `columns`
    features (default all) enter the score; the others get weight 0. With `hidden` (n, U), a
    network's hidden units on those frames, the score reads them too (HIDDEN_WEIGHT)."""
    from sklearn.linear_model import Ridge

    target = np.log(np.maximum(np.asarray(velocity, np.float64) / 127, FLOOR))
    used = X.shape[1] if columns is None else columns
    inputs = X[:, :used]
    if hidden is not None:
        mu, sd = hidden.mean(axis=0), hidden.std(axis=0) + 1e-3
        inputs = np.hstack([inputs, HIDDEN_WEIGHT * (hidden - mu) / sd])
    reg = Ridge(alpha=ridge).fit(inputs, target)
    w = np.zeros(X.shape[1])
    w[:used] = reg.coef_[:used]
    wh, b = np.zeros(0), float(reg.intercept_)
    if hidden is not None:
        wh = reg.coef_[used:] * HIDDEN_WEIGHT / sd
        b -= float(wh @ mu)
    score = X @ w + b + (hidden @ wh if hidden is not None else 0.0)
    v = np.asarray(velocity, np.float64) / 127
    pooled = monotone_curve(score, v)
    curves = np.array([monotone_curve(score[articulation == a], v[articulation == a])
                       if np.count_nonzero(articulation == a) >= MIN_HITS else pooled
                       for a in articulations])
    return Readout(w, b, curves, wh)


def monotone_curve(score: np.ndarray, target: np.ndarray, knots: int = KNOTS) -> np.ndarray:
    """(2, knots): increasing score knots at the score's quantiles and the isotonic (non-decreasing)
    fit of target there."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip").fit(score, target)
    x = np.quantile(score, np.linspace(0, 1, knots))
    x = np.maximum.accumulate(x)
    for k in range(1, knots):            # strictly increasing, even where quantiles coincide
        x[k] = max(x[k], x[k - 1] + 1e-6 * max(1.0, abs(x[k - 1])))
    return np.array([x, np.maximum.accumulate(iso.predict(x))])


def apply_curve(score: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Velocity / 127 of scores on a curve, as onset_model.mapped_velocity computes it."""
    return np.interp(score, curve[0], curve[1])


def velocity_readouts(outputs: Callable[[np.ndarray], np.ndarray], Xs: np.ndarray, takes: Sequence,
                      probs: Sequence[np.ndarray], threshold: Sequence[float], engine, retrig: int,
                      hidden: Sequence[Callable[[np.ndarray], np.ndarray]] = ()) -> list[tuple]:
    """vel_w (SCANS, F, D), vel_b (SCANS, D), vel_map (SCANS, A, 2, KNOTS) and vel_h (SCANS, U, D)
    of each network of an onset model: for each drum and scan, fit_readout on the levels of the
    frame itself (the first F / (LAGS + 1) standardised features of Xs: onset_model.frame_features)
    of the frames `scan` after its triggers on true hits (onset_training._decisions over the takes
    and their probabilities), each with the articulation the detector chooses there (the highest
    of `outputs`(rows): the ensemble's scores per drum, then per articulation), and the network's
    hidden units there (`hidden`: per network, a function of standardised rows); without
    `hidden`, one read-out of the features, vel_h empty. A drum with fewer than MIN_HITS such
    triggers gets a read-out of 0 and a flat curve at velocity 64."""
    from ..dsp.onset_model import LAGS, SCANS
    from .onset_training import _decisions

    s, D = engine.settings, len(engine.drum_names)
    group_art = engine.tables.group_art
    nets = list(hidden) or [None]
    K = len(nets)
    U = nets[0](Xs[:1]).shape[1] if hidden else 0
    vel_w, vel_b = np.zeros((K, SCANS, Xs.shape[1], D)), np.zeros((K, SCANS, D))
    vel_h = np.zeros((K, SCANS, U, D))
    vel_map = np.zeros((K, SCANS, int(group_art[D]), 2, KNOTS))
    vel_map[..., 0, :] = np.arange(KNOTS)
    vel_map[..., 1, :] = 64 / 127
    for d in range(D):
        rows, target = _decisions(takes, probs, d, threshold[d], retrig, s.hop, engine.params.onset_offset,
                                  s.sample_rate)
        if len(rows) < MIN_HITS:
            continue
        arts = range(int(group_art[d]), int(group_art[d + 1]))
        for scan in range(SCANS):       # the read-out for a note sent `scan` frames after the decision
            X = Xs[np.minimum(rows + scan, len(Xs) - 1)]
            chosen = arts.start + np.argmax(outputs(X)[:, D + arts.start:D + arts.stop], axis=1)
            for k, net in enumerate(nets):
                r = fit_readout(X, np.round(target * 127), chosen, arts, columns=Xs.shape[1] // (LAGS + 1),
                                hidden=None if net is None else net(X))
                vel_w[k, scan, :, d], vel_b[k, scan, d], vel_map[k, scan, arts.start:arts.stop] = r.w, r.b, r.curves
                if U:
                    vel_h[k, scan, :, d] = r.wh
    return [(vel_w[k], vel_b[k], vel_map[k], vel_h[k] if U else np.zeros((0, 0, 0))) for k in range(K)]


def refit_velocity(preset, kits: Sequence, grooves: Sequence[Path], seconds: float = 15.0,
                   progress: Callable[[], None] | None = None, rooms: float = 0.0):
    """The preset with its learned trigger's velocity read-out fitted anew (velocity_readouts) on
    the grooves rendered with the kits, each groove with one kit in turn, a share `rooms` of them
    in rooms (as onset_training._record): each network's read-out of the features and its hidden
    units, on the decisions of the ensemble; the networks, their thresholds and standardisation
    unchanged. Gives an older preset the curves and the hidden units' read-out."""
    from dataclasses import replace

    from ..engine import Engine
    from .onset_training import _record

    m = preset.onset_model
    engine = Engine(replace(preset, onset_model=None), max_block=preset.stft.hop)
    Xs, _, takes = _record(engine, list(kits), list(grooves), seconds, m.band_hz, progress, rooms)
    Xs -= m.mean.astype(np.float32)
    Xs /= m.scale.astype(np.float32)

    def own(n, X):                   # rows standardised for the first network, for network n
        return (X * m.scale + m.mean - n.mean) / n.scale

    def hidden(n):
        return lambda X: np.maximum(own(n, X) @ n.w1 + n.b1, 0)

    def outputs(X):                  # the ensemble's mean probabilities, as the engine decides on them
        return sum(1 / (1 + np.exp(-(hidden(n)(X) @ n.w2 + n.b2))) for n in m.networks) / len(m.networks)

    probs = [outputs(Xs[t.start:t.stop]) for t in takes]
    s = engine.settings
    retrig = max(1, -(-round(m.retrigger_ms / 1000 * s.sample_rate) // s.hop))
    fits = velocity_readouts(outputs, Xs, takes, probs, m.threshold, engine, retrig,
                             [hidden(n) for n in m.networks])
    nets = []
    for n, (vel_w, vel_b, vel_map, vel_h) in zip(m.networks, fits):
        # the read-out on network n's own standardisation: the same score
        ratio = (n.scale / m.scale)[None, :, None]
        shift = np.einsum("f,sfd->sd", (n.mean - m.mean) / m.scale, vel_w)
        nets.append(replace(n, vel_w=vel_w * ratio, vel_b=vel_b + shift, vel_map=vel_map, vel_h=vel_h))
    model = replace(nets[0], members=tuple(nets[1:]))
    prov = {**preset.provenance, "velocity_readout": {"kits": list(dict.fromkeys(k.name for k in kits)),
                                                       "grooves": len(takes), "seconds_per_groove": seconds,
                                                       "rooms": rooms}}
    out = replace(preset, onset_model=model, provenance=prov)
    out.validate()
    return out
