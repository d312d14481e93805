"""Training the nonnegative autoencoder's encoder (rtdrums.dsp.encoder) on rendered grooves.

The decoder is the preset's templates W, fixed (they are nonnegative by construction). Grooves
rendered with the kit(s) give every frame's mix and, exactly, each drum's stem and the residual's.
Supervision: each group's activations that explain its own stem best, h_g = argmin D(v_g | W_g h_g)
(KL, on the solve bands, W fixed), with the frame's total magnitude as the unit. Reconstruction:
the KL divergence of the mix's banded frame from W h. The loss per frame is
sum_r (h_r - t_r)^2 + RECON * D(v | W h), all in shares of the frame's total; numpy, Adam,
minibatches. The encoder's band inputs are standardised during the fit and the standardisation
folded into its first layer, so the stored weights read the raw log shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..dsp.encoder import Encoder, features
from ..dsp.nmf import nmf
from ..dsp.onset_model import band_bins
from ..dsp.stft import spectrogram
from ..preset import Preset, articulations
from ..tables import band_edges

BANDS, HIDDEN = 64, 64
F_MIN, F_MAX = 30.0, 20000.0
RECON = 1.0                 # weight of the mix's reconstruction against the stems' activations
GROOVES, SECONDS = 24, 15.0
EPOCHS, BATCH, RATE = 30, 256, 2e-3
TARGET_ITERATIONS = 100     # KL updates of each stem's activations (batch, W fixed)
TRAINING_WORK = 45.0        # CPU seconds of train_autoencoder on one kit (for progress: see train.training_plan)
USES = ("start", "solver")  # how `rtdrums train --autoencoder` has the solver use the encoder
REFINE = 2                  # KL updates after the encoder with method "autoencoder"


def _frames(preset: Preset, render) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of one render: magnitude frames of the mix (K, N), banded frames of the mix (B, N) and
    the stem-supervised activations (R, N); silent frames dropped."""
    s = preset.stft
    edges = band_edges(s, preset.solver.bands)
    W = preset.W
    Wb = np.add.reduceat(W, edges[:-1], axis=0)
    mag = spectrogram(render.mix, s)
    total = mag.sum(axis=0)
    keep = total > total.max() * 1e-4
    group_start = articulations(preset)["group_start"]
    names = list(preset.drum_names) + ["residual"]
    H = np.zeros((W.shape[1], mag.shape[1]))
    for g, name in enumerate(names):
        a, b = group_start[g], group_start[g + 1]
        if b == a:
            continue
        Vg = np.add.reduceat(spectrogram(render.stems[name], s), edges[:-1], axis=0)
        live = Vg.sum(axis=0) > 0
        if live.any():
            H0 = np.tile(Vg[:, live].sum(axis=0) / (b - a), (b - a, 1))
            _, Hg = nmf(Vg[:, live], b - a, n_iter=TARGET_ITERATIONS, W0=Wb[:, a:b], H0=H0, fix_W=True)
            H[a:b, live] = Hg
    Vb = np.add.reduceat(mag, edges[:-1], axis=0)
    return mag[:, keep], Vb[:, keep], H[:, keep]


def training_data(preset: Preset, kits: Sequence, grooves: Sequence[Path], seconds: float = SECONDS):
    """Encoder inputs z (N, E), banded mix frames as shares (N, B) and target shares (N, R) of
    grooves rendered with the kits in turn, plus the band edges in Hz."""
    from .render import render_groove

    s = preset.stft
    band_hz = np.geomspace(F_MIN, min(F_MAX, s.sample_rate / 2), BANDS + 1)
    e_edges = band_bins(band_hz, s.sample_rate, s.n_fft)
    zs, vs, ts = [], [], []
    for i, groove in enumerate(grooves):
        r = render_groove(groove, kits[i % len(kits)], s.sample_rate, max_seconds=seconds)
        mag, Vb, H = _frames(preset, r)
        z, total = features(mag, e_edges)
        zs.append(z)
        vs.append((Vb / total).T)
        ts.append((H / total).T)
    return np.concatenate(zs), np.concatenate(vs), np.concatenate(ts), band_hz


def fit_encoder(z: np.ndarray, v: np.ndarray, t: np.ndarray, Wb: np.ndarray, band_hz: np.ndarray,
                hidden: int = HIDDEN, epochs: int = EPOCHS, recon: float = RECON, seed: int = 0) -> Encoder:
    """Fit the encoder to inputs z (N, E), banded mix shares v (N, B) and target shares t (N, R)
    with the decoder Wb (B, R) fixed; returns it with the standardisation folded in."""
    rng = np.random.default_rng(seed)
    N, E = z.shape
    R = t.shape[1]
    mean, sd = z.mean(axis=0), z.std(axis=0) + 1e-6
    x = (z - mean) / sd
    params = [rng.normal(0, np.sqrt(2 / E), (E, hidden)), np.zeros(hidden),
              rng.normal(0, np.sqrt(1 / hidden), (hidden, R)) * 0.1,
              np.full(R, np.log(np.expm1(max(t.mean(), 1e-3))))]
    m = [np.zeros_like(p) for p in params]
    s2 = [np.zeros_like(p) for p in params]
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    step = 0
    for _ in range(epochs):
        order = rng.permutation(N)
        for i in range(0, N, BATCH):
            idx = order[i:i + BATCH]
            grads = _gradients(params, x[idx], v[idx], t[idx], Wb, recon)
            step += 1
            for p, g, mm, ss in zip(params, grads, m, s2):
                mm *= b1_
                mm += (1 - b1_) * g
                ss *= b2_
                ss += (1 - b2_) * g * g
                p -= RATE * (mm / (1 - b1_ ** step)) / (np.sqrt(ss / (1 - b2_ ** step)) + eps)
    w1, b1, w2, b2 = params
    return Encoder(band_hz=np.asarray(band_hz, np.float64), w1=w1 / sd[:, None], b1=b1 - (mean / sd) @ w1,
                   w2=w2, b2=b2)


def _forward(params, x):
    w1, b1, w2, b2 = params
    a1 = x @ w1 + b1
    h1 = np.maximum(a1, 0.0)
    a2 = h1 @ w2 + b2
    out = np.logaddexp(0.0, a2)                    # softplus
    return a1, h1, a2, out


def _gradients(params, x, v, t, Wb, recon):
    """Gradients of the mean loss over a minibatch."""
    w1, b1, w2, b2 = params
    a1, h1, a2, out = _forward(params, x)
    n = x.shape[0]
    wh = out @ Wb.T + 1e-9
    g_out = 2 * (out - t) + recon * ((1.0 - v / wh) @ Wb)
    g_a2 = g_out / (1.0 + np.exp(-a2)) / n
    g_h1 = g_a2 @ w2.T
    g_a1 = g_h1 * (a1 > 0)
    return [x.T @ g_a1, g_a1.sum(axis=0), h1.T @ g_a2, g_a2.sum(axis=0)]


def loss(enc: Encoder, z: np.ndarray, v: np.ndarray, t: np.ndarray, Wb: np.ndarray) -> dict[str, float]:
    """Mean supervision and reconstruction losses of an encoder on data as training_data gives."""
    h1 = np.maximum(z @ enc.w1 + enc.b1, 0.0)
    out = np.logaddexp(0.0, h1 @ enc.w2 + enc.b2)
    wh = out @ Wb.T + 1e-9
    kl = np.sum(v * np.log((v + 1e-12) / wh) - v + wh, axis=1)
    return {"supervision": float(np.mean(np.sum((out - t) ** 2, axis=1))), "reconstruction": float(kl.mean())}


def train_autoencoder(preset: Preset, kits: Sequence, grooves: Sequence[Path] | None = None,
                      seconds: float = SECONDS, epochs: int = EPOCHS, seed: int = 0) -> Preset:
    """The preset with an encoder trained on grooves (default: the first GROOVES of the shipped
    training split) rendered with kits in turn; the training record goes into the provenance."""
    from threadpoolctl import threadpool_limits

    from .train import tuning_grooves

    grooves = list(grooves or tuning_grooves()[:GROOVES])
    with threadpool_limits(limits=1, user_api="blas"):
        z, v, t, band_hz = training_data(preset, kits, grooves, seconds)
        edges = band_edges(preset.stft, preset.solver.bands)
        Wb = np.add.reduceat(preset.W, edges[:-1], axis=0)
        enc = fit_encoder(z, v, t, Wb, band_hz, epochs=epochs, seed=seed)
        fit = loss(enc, z, v, t, Wb)
    record = {"kits": [k.name for k in kits], "grooves": len(grooves), "seconds_per_groove": seconds,
              "frames": int(z.shape[0]), "epochs": epochs, "hidden": enc.hidden,
              **{k: round(x, 5) for k, x in fit.items()}}
    return _with_encoder(preset, enc, record)


def use_encoder(preset: Preset, use: str, refine: int = REFINE) -> Preset:
    """The preset's solver using its encoder: "start" (the frame solve starts from the encoder's h)
    or "solver" (method autoencoder: the encoder's h refined by `refine` KL updates)."""
    from dataclasses import replace

    if use == "start":
        return replace(preset, solver=replace(preset.solver, start="encoder"))
    if use == "solver":
        return replace(preset, solver=replace(preset.solver, method="autoencoder", iterations=refine,
                                              tolerance=0.0))
    raise ValueError(f"autoencoder use {use!r} is not one of {', '.join(USES)}")


def without_encoder(solver):
    """Solver settings that need no encoder: today's solve (KL, from the previous frame) for those
    that used one."""
    from dataclasses import replace

    if not solver.uses_encoder:
        return solver
    from ..preset import SolverSettings
    d = SolverSettings()
    return replace(solver, start="previous", method=d.method if solver.method == "autoencoder" else solver.method,
                   iterations=max(solver.iterations, 1) if solver.method != "autoencoder" else d.iterations,
                   tolerance=solver.tolerance if solver.method != "autoencoder" else d.tolerance)


def _with_encoder(preset: Preset, enc: Encoder, record: dict) -> Preset:
    from dataclasses import replace

    return replace(preset, autoencoder=enc, provenance={**preset.provenance, "autoencoder": record})
