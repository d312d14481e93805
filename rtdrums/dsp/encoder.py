"""The nonnegative autoencoder's encoder: a frame's spectrum straight to activations h >= 0.

The decoder is the preset's templates W (fixed, nonnegative): a frame v is modelled as W h. The
encoder reads the frame's magnitudes summed into E log-spaced bands (band_hz, so that it serves
every sample rate the preset runs at), each as a share of the frame's total magnitude, in logs:
z_e = log(v_e / |v| + EPS). One hidden layer of ReLU units and a softplus output give each
component's share of the frame, h_r = |v| softplus(w2^T relu(w1^T z + b1) + b2)_r, so h is
nonnegative for any input, zero for silence, and scales with the frame's level as the KL solution
of v ~= W h does. Trained by rtdrums.training.autoencoder.

In the engine the encoder's h is the start of the frame solve (`[solver] start = "encoder"`,
instead of the previous frame's h), or, with `[solver] method = "autoencoder"`, the activations
themselves, refined by `iterations` KL multiplicative updates (0: none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import nmf
from .onset_model import band_bins

EPS = 1e-4                  # floor of a band's share of the frame (log features)
SILENCE = 1e-12             # a frame with less total magnitude than this gives h = 0


@dataclass(frozen=True)
class Encoder:
    """Weights of the encoder: band_hz (E + 1,) band edges; w1 (E, U), b1 (U,), w2 (U, R), b2 (R,)
    for the preset's R templates. Stored in templates.npz as encoder_<name>."""
    band_hz: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    ARRAYS = ("band_hz", "w1", "b1", "w2", "b2")

    @property
    def hidden(self) -> int:
        return int(self.b1.shape[0])

    def validate(self, components: int) -> None:
        """Raise ValueError with a one-line reason if the arrays do not fit each other and R."""
        E, U = len(self.band_hz) - 1, self.b1.shape[0] if self.b1.ndim == 1 else -1
        shapes = {"w1": (E, U), "b1": (U,), "w2": (U, components), "b2": (components,)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"autoencoder: {name} has shape {getattr(self, name).shape}, expected "
                                 f"{shape} for {components} templates")
        for name in self.ARRAYS:
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"autoencoder: {name} contains NaN or infinite values")
        if E < 1 or np.any(np.diff(self.band_hz) <= 0) or np.any(self.band_hz < 0):
            raise ValueError("autoencoder: band_hz must be at least two increasing frequencies >= 0")


def encoder_tables(enc: Encoder | None, sample_rate: int, n_fft: int) -> dict[str, np.ndarray]:
    """The encoder's arrays for the engine at a rate (e_edges: start bins of its bands); empty ones
    (no bands, no units) without an encoder."""
    if enc is None:
        return dict(e_edges=np.zeros(1, np.int64), e_w1=np.zeros((0, 0)), e_b1=np.zeros(0),
                    e_w2=np.zeros((0, 0)), e_b2=np.zeros(0))
    return dict(e_edges=band_bins(enc.band_hz, sample_rate, n_fft), e_w1=np.ascontiguousarray(enc.w1, np.float64),
                e_b1=np.array(enc.b1, np.float64), e_w2=np.ascontiguousarray(enc.w2, np.float64),
                e_b2=np.array(enc.b2, np.float64))


def features(mag: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's inputs z (frames, E) and each frame's total magnitude (frames,) for magnitude
    frames mag (K, frames), as encode() computes them (for training)."""
    total = mag.sum(axis=0)
    cum = np.concatenate([np.zeros((1, mag.shape[1])), np.cumsum(mag, axis=0)])
    bands = cum[edges[1:]] - cum[edges[:-1]]             # empty bands (above Nyquist) are 0
    share = bands / np.maximum(total, SILENCE)
    return np.log(share + EPS).T, total


@njit(cache=True, nogil=True)
def encode(mag, edges, w1, b1, w2, b2, z, hidden, h):
    """The encoder's activations for one frame's magnitudes mag (K,) into h (R,); z (E,) and
    hidden (U,) are scratch. Components beyond the encoder's (free residual ones) get 0. Returns
    the frame's total magnitude."""
    total = 0.0
    for k in range(mag.shape[0]):
        total += mag[k]
    for r in range(h.shape[0]):
        h[r] = 0.0
    if not (total > SILENCE and total < 1e300):         # silence, or a NaN/Inf that got through
        return 0.0
    E, U = w1.shape
    for e in range(E):
        acc = 0.0
        for k in range(edges[e], edges[e + 1]):
            acc += mag[k]
        z[e] = math.log(acc / total + EPS)
    for u in range(U):
        hidden[u] = b1[u]
    for e in range(E):                       # rows of w1 are contiguous
        x = z[e]
        for u in range(U):
            hidden[u] += w1[e, u] * x
    R = w2.shape[1]
    for r in range(R):
        h[r] = b2[r]
    for u in range(U):
        x = hidden[u]
        if x > 0.0:
            for r in range(R):
                h[r] += w2[u, r] * x
    for r in range(R):
        a = h[r]
        sp = a + math.log1p(math.exp(-a)) if a > 0.0 else math.log1p(math.exp(a))
        y = total * sp
        h[r] = y if y < 1e300 else 0.0      # NaN fails the test too
    return total


@njit(cache=True, nogil=True)
def solve_encoded(Wb, Wbt, WtW, Wt1, pg_step, edges, mag, vb, h, method, n_iter, tol, h_floor, wh, wtv, num,
                  e_edges, w1, b1, w2, b2, z, hidden):
    """One frame solved from the encoder's start: like nmf.solve_banded, but h starts at the
    encoder's output (floored as there, so that updates can grow any component) instead of the
    previous frame's; then up to n_iter iterations of `method`. Returns the iterations used."""
    level = nmf.band_sums(mag, edges, vb)
    encode(mag, e_edges, w1, b1, w2, b2, z, hidden, h)
    R = h.shape[0]
    floor = h_floor * level / R + 1e-20
    for r in range(R):
        if not h[r] > floor:
            h[r] = floor
    return nmf.solve_frame(Wb, Wbt, WtW, Wt1, pg_step, vb, h, method, n_iter, tol, wh, wtv, num)
