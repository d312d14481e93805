"""The per-frame NMF solver (W fixed, h >= 0) reaches the optimum, and batch NMF behaves.

Euclidean multiplicative updates and projected gradient are compared with scipy.optimize.nnls
(the exact nonnegative least-squares solution), KL multiplicative updates with a long batch run
(rtdrums.dsp.nmf.nmf with fix_W=True) and with L-BFGS-B on the KL objective, on random problems and on
real ones: the fixture preset's banded templates and banded spectra of a rendered groove, i.e.
exactly what the engine solves. Then: warm starts save iterations on consecutive real frames, the
early stop honours tol, h stays nonnegative and a zero entry stays zero under multiplicative updates.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, nnls

from rtdrums.engine import Engine
from rtdrums.dsp.nmf import (METHOD_EUCLIDEAN, METHOD_KL, METHOD_PG, METHODS, SolverTables, kl_divergence,
                         nmf, solve_frame, solve_frames)
from rtdrums.dsp.stft import spectrogram


def _solve(W, v, method, n_iter, tol=0.0, h0=None):
    """One solve_frame call from h0 (default ones); returns (h, iterations used)."""
    t = SolverTables(W)
    K, R = t.W.shape
    h = np.ones(R) if h0 is None else np.array(h0, np.float64)
    it = solve_frame(t.W, t.Wt, t.WtW, t.Wt1, t.pg_step, np.ascontiguousarray(v, np.float64), h, method,
                     n_iter, tol, np.zeros(K), np.zeros(R), np.zeros(R))
    return h, it


def _random_problem(seed, K=80, R=10, sparse=True):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.0, 1.0, (K, R)) ** 3                 # peaky, overlapping templates
    W /= W.sum(axis=0)
    h_true = rng.uniform(0.0, 2.0, R)
    if sparse:
        h_true[rng.choice(R, R // 3, replace=False)] = 0.0   # active constraints at the optimum
    v = W @ h_true + rng.uniform(0.0, 0.02, K)               # + positive noise: not exactly W h
    return W, v


@pytest.fixture(scope="module")
def real_problem(fixture_preset, rendered_groove):
    """(Wb, VB): the engine's banded templates and banded spectra of 2 s of a real groove."""
    engine = Engine(fixture_preset, 48000)
    edges = engine.tables.band_edges
    V = spectrogram(rendered_groove.mix[:96000], engine.settings)
    VB = np.add.reduceat(V, edges[:-1], axis=0)
    return engine.tables.Wb, VB


def _loud_frames(VB, count):
    energy = VB.sum(axis=0)
    return np.sort(np.argsort(energy)[-count:])


def _rel_residual_gap(W, v, h):
    ref = nnls(W, v)[1]
    res = np.linalg.norm(W @ h - v)
    return (res - ref) / ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_euclidean_mu_and_pg_reach_nnls_on_random_problems(seed):
    W, v = _random_problem(seed)
    h_mu, _ = _solve(W, v, METHOD_EUCLIDEAN, 20000)
    h_pg, _ = _solve(W, v, METHOD_PG, 20000)
    for h in (h_mu, h_pg):
        assert np.all(h >= 0)
        gap = _rel_residual_gap(W, v, h)
        assert -1e-9 < gap < 1e-6, gap                   # cannot beat nnls, must match it


def test_euclidean_mu_and_pg_reach_nnls_on_real_templates(real_problem):
    W, VB = real_problem
    for m in _loud_frames(VB, 4):
        v = VB[:, m]
        for method in (METHOD_EUCLIDEAN, METHOD_PG):
            h, _ = _solve(W, v, method, 50000)
            gap = _rel_residual_gap(W, v, h)
            assert -1e-9 < gap < 1e-6, (m, method, gap)


def _kl_lbfgsb(W, v):
    """argmin_{h>=0} KL(v | W h) by L-BFGS-B, an independent reference."""
    eps = 1e-12

    def f(h):
        wh = W @ h + eps
        return np.sum(v * np.log((v + eps) / wh) - v + wh), W.T @ (1.0 - v / wh)

    h0 = np.full(W.shape[1], v.sum() / W.shape[1])
    r = minimize(f, h0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * W.shape[1],
                 options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12})
    return r.x


def test_kl_mu_reaches_the_batch_optimum(real_problem):
    W, VB = real_problem
    cols = _loud_frames(VB, 4)
    V = VB[:, cols]
    H_frame = solve_frames(W, V, method="kl", n_iter=4000)
    _, H_batch = nmf(V, W.shape[1], n_iter=10000, W0=W, fix_W=True, beta="kl")
    for j in range(V.shape[1]):
        v = V[:, j]
        d_frame = kl_divergence(v[:, None], (W @ H_frame[:, j])[:, None])
        d_batch = kl_divergence(v[:, None], (W @ H_batch[:, j])[:, None])
        d_lbfgs = kl_divergence(v[:, None], (W @ _kl_lbfgsb(W, v))[:, None])
        scale = v.sum()                                  # KL is in the units of v
        assert abs(d_frame - d_batch) <= 1e-5 * scale, (j, d_frame, d_batch)
        assert d_frame <= d_lbfgs + 1e-5 * scale, (j, d_frame, d_lbfgs)


def test_kl_mu_on_random_problem_matches_lbfgsb():
    W, v = _random_problem(5)
    h, _ = _solve(W, v, METHOD_KL, 20000)
    d = kl_divergence(v[:, None], (W @ h)[:, None])
    d_ref = kl_divergence(v[:, None], (W @ _kl_lbfgsb(W, v))[:, None])
    assert d <= d_ref + 1e-6 * v.sum()


@pytest.mark.parametrize("method", ["kl", "euclidean", "projected-gradient"])
def test_warm_start_needs_fewer_iterations(real_problem, method):
    W, VB = real_problem
    first = _loud_frames(VB, 1)[0]
    frames = range(first, first + 60)                    # a hit and its decay, frame by frame
    tol = 1e-3                                           # the engine's defaults: tol and start floor
    cold_iters = warm_iters = 0
    h_warm = None
    for m in frames:
        v = VB[:, m]
        start = np.full(W.shape[1], max(v.sum(), 1e-12) / W.shape[1])
        _, it_cold = _solve(W, v, METHODS[method], 5000, tol, start)
        h_warm, it_warm = _solve(W, v, METHODS[method], 5000, tol,
                                 start if h_warm is None else np.maximum(h_warm, 1e-2 * start))
        cold_iters += it_cold
        warm_iters += it_warm
    # measured: warm/cold = 0.39 (euclidean), 0.31 (kl), 0.43 (projected gradient)
    assert warm_iters < 0.6 * cold_iters, (warm_iters, cold_iters)


@pytest.mark.parametrize("method", [METHOD_EUCLIDEAN, METHOD_KL, METHOD_PG])
def test_early_stop_honours_tol(real_problem, method):
    W, VB = real_problem
    v = VB[:, _loud_frames(VB, 1)[0]]
    tol = 1e-3
    h, it = _solve(W, v, method, 10000, tol)
    assert 2 < it < 10000
    h_prev, it_prev = _solve(W, v, method, it - 1, 0.0)   # deterministic: replay one step short
    h_prev2, _ = _solve(W, v, method, it - 2, 0.0)
    assert it_prev == it - 1
    assert np.sum(np.abs(h - h_prev)) <= tol * np.sum(h) + 1e-300          # it stopped because of tol
    assert np.sum(np.abs(h_prev - h_prev2)) > tol * np.sum(h_prev)         # and not a step earlier
    # with tol = 0 the whole budget is spent
    assert _solve(W, v, method, 37, 0.0)[1] == 37


@pytest.mark.parametrize("method", [METHOD_EUCLIDEAN, METHOD_KL, METHOD_PG])
def test_h_stays_nonnegative(method):
    for seed in range(5):
        W, v = _random_problem(seed)
        rng = np.random.default_rng(seed)
        h, _ = _solve(W, v, method, int(rng.integers(1, 300)), 0.0, rng.uniform(0, 3, W.shape[1]))
        assert np.all(h >= 0) and np.all(np.isfinite(h))


@pytest.mark.parametrize("method", [METHOD_EUCLIDEAN, METHOD_KL])
def test_zero_stays_zero_under_multiplicative_updates(method):
    W, v = _random_problem(3)
    h0 = np.ones(W.shape[1])
    off = [1, 4, 7]
    h0[off] = 0.0
    h, _ = _solve(W, v, method, 500, 0.0, h0)
    assert np.all(h[off] == 0.0)
    assert np.all(np.delete(h, off) >= 0) and np.delete(h, off).sum() > 0


def test_zero_input_gives_zero_activations():
    W, _ = _random_problem(0)
    for method in (METHOD_EUCLIDEAN, METHOD_KL, METHOD_PG):
        h, _ = _solve(W, np.zeros(W.shape[0]), method, 200)
        assert np.all(np.isfinite(h)) and np.all(h >= 0) and h.sum() < 1e-6


def test_batch_nmf_decreases_kl_and_normalises_templates(real_problem):
    _, VB = real_problem
    V = VB[:, :120] + 1e-9
    divergences = []
    for n_iter in (5, 20, 80):
        W, H = nmf(V, 6, n_iter=n_iter, seed=1)
        assert np.all(W >= 0) and np.all(H >= 0)
        np.testing.assert_allclose(W.sum(axis=0), 1.0, rtol=1e-9)
        divergences.append(kl_divergence(V, W @ H))
    assert divergences[0] > divergences[1] > divergences[2]
    assert nmf(V, 6, n_iter=20, seed=1)[0].tobytes() == nmf(V, 6, n_iter=20, seed=1)[0].tobytes()
