"""Semi-adaptive templates: the trained W drifts, slowly and within bounds, towards the kit being played.

In the spirit of Dittmar and Gaertner's semi-adaptive bases (DAFx 2014). After a frame is solved,
if one group (a drum, or the residual) holds at least `confidence` of the model's energy and its
activation reaches `level` x its full-velocity reference, that group's active columns get one
frame's multiplicative KL update of W, blended in at `rate` x the column's share of the group:

    W[k, r] <- W[k, r] * (1 + rate * share_r * m_g[k] * (v[k] / (W h)[k] - 1))

m_g[k] is the group's share of the model in bin k, so bins that another group explains do not
move. Columns are renormalised to unit L1 and each bin is clipped to [lower, upper] x its trained
value: a kick can become this kick, never a snare. The residual also gets `free_components` columns
that start from neutral spectral tilts and learn, unbounded but floored, whatever the residual
sounds are (toms, cymbals, other instruments in the room). An update that would not be finite is
dropped. Every table derived from W (Wt, Wb, Wbt, WtW, Wt1) is updated for the changed columns.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from numba import njit

from ..errors import UserError
from ..paths import ensure_writable_dir

FREE_LABEL = "free"
FREE_FLOOR = 1e-6        # a free column's bins stay above this share of a flat spectrum
RATIO_CAP = 4.0          # one frame cannot push a bin by more than this ratio
MIN_SHARE = 0.02         # columns with less of their group's activation are left alone


def add_switches(parser, save: bool = True) -> None:
    """--adapt/--no-adapt (and --save-adapted PRESET_DIR) for a command."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--adapt", dest="adapt", action="store_true", default=None,
                   help="let the templates adapt to the kit being played (default: the preset's [adapt] enabled)")
    g.add_argument("--no-adapt", dest="adapt", action="store_false", help="keep the trained templates fixed")
    if save:
        parser.add_argument("--save-adapted", metavar="PRESET_DIR", type=Path,
                            help="afterwards, write a preset with the adapted templates into this folder")


def with_adaptation(p, enabled: bool | None):
    """The preset with adaptation switched on or off (None: as the preset says)."""
    return p if enabled is None else replace(p, adapt=replace(p.adapt, enabled=bool(enabled)))


def check_save_target(folder: Path | None, enabled: bool) -> None:
    """Fail before any work when --save-adapted cannot be honoured."""
    if folder is None:
        return
    if not enabled:
        raise UserError("--save-adapted needs adaptation on: add --adapt (or enable [adapt] in the preset)")
    ensure_writable_dir(folder, "--save-adapted")


def neutral_templates(bin_freqs: np.ndarray, n: int) -> np.ndarray:
    """n unit-L1 columns with spectral tilts from flat to 1/f (distinct, so they can diverge)."""
    f = np.maximum(bin_freqs, bin_freqs[1] if len(bin_freqs) > 1 else 1.0)
    cols = [f ** -a for a in np.linspace(0.0, 1.0, n)] if n else []
    W = np.stack(cols, axis=1) if n else np.zeros((len(f), 0))
    return W / W.sum(axis=0, keepdims=True) if n else W


def with_free_components(p):
    """The preset the engine runs when adaptation adds free residual components."""
    F = p.adapt.free_components if p.adapt.enabled else 0
    if F == 0:
        return p
    R0 = p.residual_components
    labels = p.residual_labels if len(p.residual_labels) == R0 else ("",) * R0
    return replace(p, W=np.concatenate([p.W, neutral_templates(p.stft.bin_freqs, F)], axis=1),
                   residual_labels=tuple(labels) + (FREE_LABEL,) * F)


@njit(cache=True, nogil=True)
def adapt_frame(W, Wt, Wb, Wbt, WtW, Wt1, W0, band_edges, group_start, free_start, level, h, mag,
                rate, lower, upper, confidence, lam, lamg, col, changed):
    """One adaptation step after a frame's solve; returns the number of columns changed.

    W (K, R) and its derived tables are updated in place; W0 (K, R) the trained templates (free
    columns, from free_start on, are not bounded by them); level (G,) the activation each group
    must reach; h (R,) the frame's activations, mag (K,) its magnitudes; lam, lamg, col (K,) and
    changed (R,) int64 are scratch.
    """
    K, R = W.shape
    G = group_start.shape[0] - 1
    total = 0.0
    for r in range(R):
        total += h[r]
    if not (total > 0.0 and np.isfinite(total)):
        return 0
    best, h_best = -1, 0.0
    for g in range(G):
        hg = 0.0
        for r in range(group_start[g], group_start[g + 1]):
            hg += h[r]
        if hg >= confidence * total and hg >= level[g] and hg > h_best:
            best, h_best = g, hg
    if best < 0:
        return 0
    g0, g1 = group_start[best], group_start[best + 1]
    for k in range(K):
        lam[k] = 1e-30
        lamg[k] = 0.0
    for r in range(R):
        x = h[r]
        if x > 0.0:
            for k in range(K):
                lam[k] += Wt[r, k] * x
            if g0 <= r < g1:
                for k in range(K):
                    lamg[k] += Wt[r, k] * x
    for k in range(K):                    # lamg becomes the per-bin step: share x (ratio - 1)
        q = mag[k] / lam[k]
        if q > RATIO_CAP:
            q = RATIO_CAP
        lamg[k] = lamg[k] / lam[k] * (q - 1.0)
    n = 0
    for r in range(g0, g1):
        share = h[r] / h_best
        if share < MIN_SHARE:
            continue
        a = rate * share
        s = 0.0
        for k in range(K):
            x = Wt[r, k] * (1.0 + a * lamg[k])
            col[k] = x
            s += x
        if not (s > 0.0 and np.isfinite(s)):
            continue
        inv = 1.0 / s
        free = r >= free_start
        floor = FREE_FLOOR / K
        s2 = 0.0
        for k in range(K):
            x = col[k] * inv
            if free:
                if x < floor:
                    x = floor
            else:
                lo = lower * W0[k, r]
                hi = upper * W0[k, r]
                x = lo if x < lo else (hi if x > hi else x)
            col[k] = x
            s2 += x
        if not (s2 > 0.0 and np.isfinite(s2)):
            continue
        for k in range(K):
            W[k, r] = col[k]
            Wt[r, k] = col[k]
        acc1 = 0.0
        for b in range(Wb.shape[0]):
            acc = 0.0
            for k in range(band_edges[b], band_edges[b + 1]):
                acc += col[k]
            Wb[b, r] = acc
            Wbt[r, b] = acc
            acc1 += acc
        Wt1[r] = acc1
        changed[n] = r
        n += 1
    B = Wb.shape[0]
    for i in range(n):                    # W^T W: rows and columns of the changed templates
        r = changed[i]
        for q in range(R):
            acc = 0.0
            for b in range(B):
                acc += Wbt[r, b] * Wbt[q, b]
            WtW[r, q] = acc
            WtW[q, r] = acc
    return n
