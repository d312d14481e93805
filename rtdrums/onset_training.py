"""Training the learned trigger (rtdrums.onset_model) on grooves rendered with one kit.

The kit plays the Groove MIDI Dataset grooves shipped for it (rtdrums/data/grooves/model, 40
grooves of the dataset's training split, 30 s each). The engine, with the preset's templates,
runs over each mixture one hop at a time and every frame's features are recorded, labelled with
the drums struck in the LABEL_MS before the frame's newest sample and their velocities. A network
with one hidden layer (scikit-learn's MLPClassifier, one logistic output per drum) learns the
labels; a ridge regression on the struck frames learns the velocity. Each drum's threshold is
the probability that gives the best onset F-measure (50 ms) on the training mixtures.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .engine import Engine
from .onset_model import LAGS, OnsetModel, band_bins, default_band_hz, frame_features
from .preset import Preset

GROOVE_SECONDS = 30.0
LABEL_MS = 10.7          # a frame is labelled struck for a hit up to 4 hops (48 kHz, 128) before its end
HIDDEN = 64
RETRIGGER_MS = 30.0
WINDOW_S = 0.05
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def model_grooves() -> list[Path]:
    from .render import shipped_grooves

    return shipped_grooves("model")


def record_features(engine: Engine, mix: np.ndarray, band_hz: np.ndarray) -> np.ndarray:
    """The onset model's features (frames, F) of a mixture, the engine run from a fresh start."""
    s = engine.settings
    edges = band_bins(band_hz, s.sample_rate, s.n_fft)
    Z = len(edges) - 1 + engine.tables.W.shape[1]
    zring, feat = np.zeros((LAGS + 1, Z)), np.zeros((LAGS + 1) * Z)
    x = np.ascontiguousarray(mix, np.float32)
    out = np.zeros((len(x) // s.hop, len(feat)), np.float32)
    engine.reset()
    for m in range(len(out)):
        engine.process(x[m * s.hop:(m + 1) * s.hop])
        frame_features(engine.state.mag, engine.state.h, edges, engine.params.mag_norm, zring, m, feat)
        out[m] = feat
    engine.reset()
    return out


def frame_labels(onsets: Sequence[np.ndarray], velocities: Sequence[np.ndarray], frames: int,
                 hop: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and drum: struck in the LABEL_MS before the frame's end (bool), and velocity / 127."""
    y, v = np.zeros((frames, len(onsets)), bool), np.zeros((frames, len(onsets)), np.float32)
    ends = (np.arange(frames) + 1) * hop
    span = LABEL_MS / 1000 * sample_rate
    for d, (on, vel) in enumerate(zip(onsets, velocities)):
        for s, vv in zip(on, vel):
            m = (ends > s) & (ends <= s + span)
            y[m, d] = True
            v[m, d] = vv / 127
    return y, v


def pick(prob: np.ndarray, threshold: float, retrig: int) -> np.ndarray:
    """Frames at which a drum triggers: probability above threshold, retrig frames apart (as
    onset_model.detect does)."""
    out, last = [], -retrig
    for m in np.flatnonzero(prob > threshold):
        if m - last >= retrig:
            out.append(m)
            last = m
    return np.array(out, np.int64)


def _f_measure(takes, probs, d, threshold, retrig, hop, offset, sample_rate) -> float:
    import mir_eval

    hits = n_ref = n_est = 0
    for (_, _, onsets), p in zip(takes, probs):
        est = ((pick(p[:, d], threshold, retrig) + 1) * hop - offset) / sample_rate
        ref = onsets[d] / sample_rate
        hits += len(mir_eval.util.match_events(ref, est, WINDOW_S))
        n_ref, n_est = n_ref + len(ref), n_est + len(est)
    return 2 * hits / max(n_ref + n_est, 1)


def train_onset_model(preset: Preset, kit, grooves: Sequence[Path] | None = None,
                      seconds: float = GROOVE_SECONDS, progress: Callable[[], None] | None = None,
                      seed: int = 0) -> Preset:
    """The preset with an onset model trained on grooves (default: model_grooves()) rendered with kit."""
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPClassifier

    from .render import render_groove

    base = replace(preset, onset_model=None)
    engine = Engine(base, max_block=base.stft.hop)
    s = engine.settings
    band_hz = default_band_hz()
    takes = []
    for groove in grooves or model_grooves():
        r = render_groove(groove, kit, s.sample_rate, max_seconds=seconds)
        X = record_features(engine, r.mix, band_hz)
        onsets = [r.samples(d) for d in engine.drum_names]
        vel = [np.array([o.velocity for o in r.onsets if o.drum == d]) for d in engine.drum_names]
        takes.append((X, frame_labels(onsets, vel, len(X), s.hop, s.sample_rate), onsets))
        if progress:
            progress()
    X = np.concatenate([t[0] for t in takes])
    Y = np.concatenate([t[1][0] for t in takes])
    V = np.concatenate([t[1][1] for t in takes])
    mean, scale = X.mean(axis=0), np.maximum(X.std(axis=0), 1e-3)
    Xs = (X - mean) / scale
    net = MLPClassifier((HIDDEN,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=seed)
    net.fit(Xs, Y)
    D = len(engine.drum_names)
    vel_w, vel_b = np.zeros((X.shape[1], D)), np.zeros(D)
    for d in range(D):
        if Y[:, d].any():
            reg = Ridge(alpha=1.0).fit(Xs[Y[:, d]], V[Y[:, d], d])
            vel_w[:, d], vel_b[d] = reg.coef_, reg.intercept_
    if progress:
        progress()
    probs = [net.predict_proba((t[0] - mean) / scale) for t in takes]
    retrig = max(1, -(-round(RETRIGGER_MS / 1000 * s.sample_rate) // s.hop))   # frames, as the engine counts
    offset = engine.params.onset_offset
    threshold = tuple(float(max(THRESHOLDS, key=lambda t: _f_measure(
        [(None, None, on) for _, _, on in takes], probs, d, t, retrig, s.hop, offset, s.sample_rate)))
        for d in range(D))
    model = OnsetModel(band_hz=band_hz, mean=mean.astype(np.float64), scale=scale.astype(np.float64),
                       w1=net.coefs_[0], b1=net.intercepts_[0], w2=net.coefs_[1], b2=net.intercepts_[1],
                       vel_w=vel_w, vel_b=vel_b, threshold=threshold, retrigger_ms=RETRIGGER_MS)
    trained = replace(preset, onset_model=model)
    trained.validate()
    return trained
