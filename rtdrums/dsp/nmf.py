"""Nonnegative matrix factorisation kernels.

Symbols follow the usual NMF notation: V (K x N) ~= W H with W (K x R) spectral templates and
H (R x N) activations. Live, W is fixed and each frame v (K,) is explained by
h = argmin_{h >= 0} D(v | W h), solved by one of three nonnegative iterations:

  METHOD_EUCLIDEAN  multiplicative update h <- h * (W^T v) / (W^T W h)  (Lee and Seung)
  METHOD_KL         multiplicative update h <- h * (W^T (v / W h)) / (W^T 1)
  METHOD_PG         projected gradient h <- max(0, h - (W^T W h - W^T v) / L), L = ||W^T W||_2

The frame solvers are Numba-compiled, allocation-free and warm-started by the caller. Batch NMF
for training works on whole spectrograms with numpy (BLAS does the matrix products).
"""

from __future__ import annotations

import numpy as np
from numba import njit

METHOD_EUCLIDEAN, METHOD_KL, METHOD_PG = 0, 1, 2
METHODS = {"euclidean": METHOD_EUCLIDEAN, "kl": METHOD_KL, "projected-gradient": METHOD_PG}
EPS = 1e-12


class SolverTables:
    """Quantities of a fixed W that every frame solve reuses: W^T, W^T W, W^T 1, the PG step."""

    def __init__(self, W: np.ndarray):
        W = np.ascontiguousarray(W, np.float64)
        self.W = W
        self.Wt = np.ascontiguousarray(W.T)
        self.WtW = np.ascontiguousarray(W.T @ W)
        self.Wt1 = W.sum(axis=0)
        self.pg_step = 1.0 / max(np.linalg.eigvalsh(self.WtW).max(), EPS)


@njit(cache=True, nogil=True)
def solve_frame(W, Wt, WtW, Wt1, pg_step, v, h, method, n_iter, tol, wh, wtv, num):
    """Refine h (R,) in place towards argmin_{h>=0} D(v | W h); return the iterations used.

    W (K x R) and its transpose Wt (R x K, contiguous), v (K,), h (R,) the warm start; wh (K,),
    wtv (R,), num (R,) are scratch arrays. Stops after n_iter iterations or when the relative L1
    change of h falls below tol.
    """
    # Every product is written as a sum of contiguous rows scaled by a scalar: each output element
    # keeps its own accumulator, so the inner loops vectorise without reassociating a sum.
    K, R = W.shape
    if method != METHOD_KL:
        wtv[:] = 0.0
        for k in range(K):
            for r in range(R):
                wtv[r] += W[k, r] * v[k]
    it = 0
    while it < n_iter:
        it += 1
        num[:] = 0.0
        if method == METHOD_KL:
            wh[:] = EPS
            for r in range(R):
                for k in range(K):
                    wh[k] += Wt[r, k] * h[r]
            for k in range(K):
                q = v[k] / wh[k]
                for r in range(R):
                    num[r] += W[k, r] * q
            for r in range(R):
                num[r] = h[r] * num[r] / (Wt1[r] + EPS)
        else:
            for q in range(R):           # W^T W is symmetric: row q is column q
                for r in range(R):
                    num[r] += WtW[q, r] * h[q]
            for r in range(R):
                if method == METHOD_EUCLIDEAN:
                    num[r] = h[r] * wtv[r] / (num[r] + EPS)
                else:
                    step = h[r] - pg_step * (num[r] - wtv[r])
                    num[r] = step if step > 0.0 else 0.0
        change = 0.0
        total = 0.0
        for r in range(R):
            change += abs(num[r] - h[r])
            total += num[r]
            h[r] = num[r]
        if change <= tol * (total + EPS):
            break
    return it


@njit(cache=True, nogil=True)
def band_sums(mag, edges, vb) -> float:
    """vb[b] = the sum of mag over edges[b]:edges[b + 1]; returns the sum of all bands."""
    level = 0.0
    for b in range(vb.shape[0]):
        acc = 0.0
        for k in range(edges[b], edges[b + 1]):
            acc += mag[k]
        vb[b] = acc
        level += acc
    return level


@njit(cache=True, nogil=True)
def solve_banded(Wb, Wbt, WtW, Wt1, pg_step, edges, mag, vb, h, method, n_iter, tol, warm_decay, h_floor,
                 wh, wtv, num):
    """One frame as the streaming engine solves it; returns the iterations used.

    mag (K,) is summed into the bands edges[b]:edges[b + 1] (vb, B scratch) that the banded
    templates Wb (B x R; Wbt its transpose) model; h (R,), the previous frame's activations, is
    decayed by warm_decay and floored at h_floor times the frame's level per component, so that
    every component can switch on; then solve_frame refines it.
    """
    level = band_sums(mag, edges, vb)
    R = h.shape[0]
    floor = h_floor * level / R + 1e-20
    for r in range(R):
        x = h[r] * warm_decay
        h[r] = x if x > floor else floor
    return solve_frame(Wb, Wbt, WtW, Wt1, pg_step, vb, h, method, n_iter, tol, wh, wtv, num)


def solve_frames(W: np.ndarray, V: np.ndarray, method: str = "kl", n_iter: int = 200,
                 tol: float = 0.0, H0: np.ndarray | None = None) -> np.ndarray:
    """Solve every column of V independently (cold start or H0); a reference, not the live path."""
    t = SolverTables(W)
    K, R = t.W.shape
    H = np.full((R, V.shape[1]), 1.0) if H0 is None else np.array(H0, np.float64)
    wh, wtv, num = np.zeros(K), np.zeros(R), np.zeros(R)
    for n in range(V.shape[1]):
        h = np.ascontiguousarray(H[:, n])
        solve_frame(t.W, t.Wt, t.WtW, t.Wt1, t.pg_step, np.ascontiguousarray(V[:, n], np.float64),
                    h, METHODS[method], n_iter, tol, wh, wtv, num)
        H[:, n] = h
    return H


def nmf(V: np.ndarray, R: int, n_iter: int = 200, W0: np.ndarray | None = None,
        H0: np.ndarray | None = None, fix_W: bool = False, beta: str = "kl",
        seed: int = 0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Batch NMF V ~= W H by multiplicative updates (KL or Euclidean); returns (W, H).

    Columns of W are normalised to unit L1 norm (H rescaled to keep W H), so templates are
    comparable across drums and activations are in magnitude units. dtype float32 computes in
    single precision (training's templates: six times faster, W within 1e-5 of float64's).
    """
    V = np.asarray(V, dtype)
    K, N = V.shape
    rng = np.random.default_rng(seed)
    W = (rng.uniform(0.1, 1.0, (K, R)) * V.mean() if W0 is None else np.array(W0)).astype(dtype)
    H = (rng.uniform(0.1, 1.0, (R, N)) if H0 is None else np.array(H0)).astype(dtype)
    Q = np.empty_like(V)                       # V / (W H), in place: no temporaries of V's size
    for _ in range(n_iter):
        if beta == "kl":
            H *= (W.T @ _ratio(V, W, H, Q)) / (W.sum(axis=0)[:, None] + EPS)
            if not fix_W:
                W *= (_ratio(V, W, H, Q) @ H.T) / (H.sum(axis=1)[None, :] + EPS)
        else:
            H *= (W.T @ V) / (W.T @ W @ H + EPS)
            if not fix_W:
                W *= (V @ H.T) / (W @ H @ H.T + EPS)
        if not fix_W:
            norms = W.sum(axis=0) + EPS
            W /= norms
            H *= norms[:, None]
    return W, H


def _ratio(V: np.ndarray, W: np.ndarray, H: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """V / (W H + EPS), written into Q."""
    if W.shape[1] == 1:           # an outer product: the same values, and numpy's matmul has no
        np.multiply(W, H, out=Q)  # BLAS path for it (five times slower)
    else:
        np.matmul(W, H, out=Q)
    Q += EPS
    return np.divide(V, Q, out=Q)


def kl_divergence(V: np.ndarray, WH: np.ndarray) -> float:
    """Generalised KL divergence D(V | WH)."""
    V = np.asarray(V, np.float64)
    WH = np.asarray(WH, np.float64) + EPS
    return float(np.sum(V * np.log((V + EPS) / WH) - V + WH))


@njit(cache=True, nogil=True)
def solve_kl32(W32, Wt32, Wt1, v, h, n_iter, tol, wh32, num32, h32, v32):
    """solve_frame's KL iteration in float32 (the lean kernels): the same updates and stopping
    rule with W32 (K x R) and Wt32 (R x K) float32, twice the lanes per vector instruction; v (K,)
    and h (R,) stay float64; wh32 (K,), num32, h32 (R,), v32 (K,) float32 scratch."""
    K, R = W32.shape
    for k in range(K):
        v32[k] = v[k]
    for r in range(R):
        h32[r] = h[r]
    eps = np.float32(EPS)
    it = 0
    while it < n_iter:
        it += 1
        wh32[:] = eps
        for r in range(R):
            x = h32[r]
            row = Wt32[r]
            for k in range(K):
                wh32[k] += row[k] * x
        num32[:] = 0.0
        for k in range(K):
            q = v32[k] / wh32[k]
            row = W32[k]
            for r in range(R):
                num32[r] += row[r] * q
        change = 0.0
        total = 0.0
        for r in range(R):
            x = float(h32[r]) * float(num32[r]) / (Wt1[r] + EPS)
            change += abs(x - float(h32[r]))
            total += x
            h32[r] = x
        if change <= tol * (total + EPS):
            break
    for r in range(R):
        h[r] = h32[r]
    return it
