"""Training the learned trigger (rtdrums.onset_model) on grooves rendered with the kit it is for.

The kit plays the Groove MIDI Dataset grooves shipped for it (rtdrums/data/grooves/model, 40
grooves of the dataset's training split, 30 s each). The engine, with the preset's templates,
runs over each mixture one hop at a time and every frame's features are recorded, labelled with
the drums struck in the LABEL_MS before the frame's newest sample. A network with one hidden layer
(scikit-learn's MLPClassifier, one logistic output per drum) learns the labels. Each drum's
threshold is the probability that gives the best onset F_0.5 (50 ms) on the training mixtures;
then, for each scan (0 to SCANS - 1 frames), a ridge regression learns the velocity from the
features of the frame `scan` after each trigger on a true hit.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .engine import Engine
from .onset_model import LAGS, SCANS, OnsetModel, band_bins, default_band_hz, frame_features
from .preset import Preset

GROOVE_SECONDS = 30.0
LABEL_MS = 10.7          # a frame is labelled struck for a hit up to 4 hops (48 kHz, 128) before its end
HIDDEN = 64
RETRIGGER_MS = 30.0
WINDOW_S = 0.05
BETA = 0.5               # thresholds maximise F_0.5, as the threshold detector's tuning does: on
                         # stage a phantom snare is worse than a missed ghost note
VELOCITY_RIDGE = 100.0
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


def frame_labels(onsets: Sequence[np.ndarray], frames: int, hop: int, sample_rate: int) -> np.ndarray:
    """Per frame and drum: struck in the LABEL_MS before the frame's end."""
    y = np.zeros((frames, len(onsets)), bool)
    ends = (np.arange(frames) + 1) * hop
    span = LABEL_MS / 1000 * sample_rate
    for d, on in enumerate(onsets):
        for s in on:
            y[(ends > s) & (ends <= s + span), d] = True
    return y


def pick(prob: np.ndarray, threshold: float, retrig: int) -> np.ndarray:
    """Frames at which a drum triggers: probability above threshold, retrig frames apart (as
    onset_model.detect does)."""
    out, last = [], -retrig
    for m in np.flatnonzero(prob > threshold):
        if m - last >= retrig:
            out.append(m)
            last = m
    return np.array(out, np.int64)


def _matches(onsets, prob, threshold, retrig, hop, offset, sample_rate):
    """Trigger frames of one take and their (true onset index, trigger index) pairs at 50 ms."""
    import mir_eval

    frames = pick(prob, threshold, retrig)
    est = ((frames + 1) * hop - offset) / sample_rate
    return frames, mir_eval.util.match_events(onsets / sample_rate, est, WINDOW_S)


def _f_beta(onsets, probs, d, threshold, retrig, hop, offset, sample_rate) -> float:
    """Onset F_beta (BETA) of drum d over the takes."""
    hits = n_ref = n_est = 0
    for on, p in zip(onsets, probs):
        frames, pairs = _matches(on[d], p[:, d], threshold, retrig, hop, offset, sample_rate)
        hits, n_ref, n_est = hits + len(pairs), n_ref + len(on[d]), n_est + len(frames)
    b2 = BETA * BETA
    return (1 + b2) * hits / max(b2 * n_ref + n_est, 1)


def _decisions(takes, probs, d, threshold, retrig, hop, offset, sample_rate):
    """Rows of the stacked features at which drum d triggers on a true hit, and its velocity / 127."""
    rows, target, start = [], [], 0
    for (X, _, on, vel), p in zip(takes, probs):
        frames, pairs = _matches(on[d], p[:, d], threshold, retrig, hop, offset, sample_rate)
        rows += [start + frames[j] for _, j in pairs]
        target += [vel[d][i] / 127 for i, _ in pairs]
        start += len(X)
    return np.array(rows, np.int64), np.array(target)


def train_onset_model(preset: Preset, kits: Sequence, grooves: Sequence[Path] | None = None,
                      seconds: float = GROOVE_SECONDS, progress: Callable[[], None] | None = None,
                      seed: int = 0) -> Preset:
    """The preset with an onset model trained on grooves (default: model_grooves()) rendered with
    each of the kits."""
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from .render import render_groove

    base = replace(preset, onset_model=None)
    engine = Engine(base, max_block=base.stft.hop)
    s = engine.settings
    band_hz = default_band_hz()
    takes = []
    for kit, groove in itertools.product(kits, grooves or model_grooves()):
        r = render_groove(groove, kit, s.sample_rate, max_seconds=seconds)
        X = record_features(engine, r.mix, band_hz)
        onsets = [r.samples(d) for d in engine.drum_names]
        vel = [np.array([o.velocity for o in r.onsets if o.drum == d]) for d in engine.drum_names]
        takes.append((X, frame_labels(onsets, len(X), s.hop, s.sample_rate), onsets, vel))
        if progress:
            progress()
    X = np.concatenate([t[0] for t in takes])
    mean, scale = X.mean(axis=0), np.maximum(X.std(axis=0), 1e-3)
    Xs = (X - mean) / scale
    net = MLPClassifier((HIDDEN,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=seed)
    # one BLAS thread: the fit's rounding, and so its early stop and the thresholds, would differ
    # with the thread count (measured: thresholds 0.85 / 0.7 / 0.65 on 2 threads, 0.75 / 0.8 /
    # 0.75 on one), and a preset must not depend on the machine it was trained on
    with threadpool_limits(limits=1, user_api="blas"):
        net.fit(Xs, np.concatenate([t[1] for t in takes]))
    if progress:
        progress()
    D = len(engine.drum_names)
    probs = [net.predict_proba((t[0] - mean) / scale) for t in takes]
    retrig = max(1, -(-round(RETRIGGER_MS / 1000 * s.sample_rate) // s.hop))   # frames, as the engine counts
    offset = engine.params.onset_offset
    onsets = [t[2] for t in takes]
    threshold = tuple(float(max(THRESHOLDS, key=lambda t: _f_beta(
        onsets, probs, d, t, retrig, s.hop, offset, s.sample_rate))) for d in range(D))
    vel_w, vel_b = np.zeros((SCANS, X.shape[1], D)), np.zeros((SCANS, D))
    for d in range(D):
        rows, target = _decisions(takes, probs, d, threshold[d], retrig, s.hop, offset, s.sample_rate)
        if len(rows) < 2:
            continue
        for scan in range(SCANS):       # the read-out for a note sent `scan` frames after the decision
            reg = Ridge(alpha=VELOCITY_RIDGE).fit(Xs[np.minimum(rows + scan, len(X) - 1)], target)
            vel_w[scan, :, d], vel_b[scan, d] = reg.coef_, reg.intercept_
    model = OnsetModel(band_hz=band_hz, mean=mean.astype(np.float64), scale=scale.astype(np.float64),
                       w1=net.coefs_[0], b1=net.intercepts_[0], w2=net.coefs_[1], b2=net.intercepts_[1],
                       vel_w=vel_w, vel_b=vel_b, threshold=threshold, retrigger_ms=RETRIGGER_MS)
    trained = replace(preset, onset_model=model)
    trained.validate()
    return trained
