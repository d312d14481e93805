"""Time per frame of the engine's frame solver against libnmfd and scikit-learn.

All solvers explain the same magnitude frames (the frames the engine sees of a signal) with the
same fixed templates W (K bins x R), minimising the KL divergence D(v | W h). The engine's solve
runs as in the engine (banded, warm-started, its iteration budget and tolerance); its fit is the
mean full-bin D(v | W h) per frame. scikit-learn (non_negative_factorization, KL multiplicative
updates, W fixed) and libnmfd (core.nmf.nmf, KLDiv, fix_W) then run on all frames at once, the
way they are meant to be used, with the fewest iterations from ITERATION_LADDER that reach at
least that fit; scikit-learn is also timed one call per frame, as a live host would have to call
it. Every timing is the best of `repeats`, on one thread (threadpoolctl), in one run, so the
ratios compare like with like.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ..dsp import nmf as rt_nmf
from ..engine import Engine
from ..events import EVENT_DTYPE
from ..preset import Preset
from ..dsp.stft import spectrogram

ITERATION_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100, 150, 200, 300)
PER_FRAME_CALLS = 200        # frames timed with one scikit-learn call each


@njit(cache=True, nogil=True)
def engine_solve(Wb, Wbt, WtW, Wt1, pg_step, edges, V, method, n_iter, tol, warm_decay, h_floor, H):
    """The engine's per-frame solve (nmf.solve_banded, warm-started) over the columns of V (K x N).

    Writes each frame's h into H (R x N); returns the total number of iterations.
    """
    B, R = Wb.shape
    vb, h, wh, wtv, num = np.zeros(B), np.zeros(R), np.zeros(B), np.zeros(R), np.zeros(R)
    total = 0
    for m in range(V.shape[1]):
        total += rt_nmf.solve_banded(Wb, Wbt, WtW, Wt1, pg_step, edges, V[:, m], vb, h, method, n_iter, tol,
                                     warm_decay, h_floor, wh, wtv, num)
        H[:, m] = h
    return total


def mean_kl(V: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """Mean generalised KL divergence per frame of V from W H."""
    return rt_nmf.kl_divergence(V, W @ H) / V.shape[1]


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _sklearn(V, W, n_iter):
    import warnings

    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Hs, _, _ = non_negative_factorization(V.T, H=np.ascontiguousarray(W.T), n_components=W.shape[1],
                                              init="custom", update_H=False, solver="mu",
                                              beta_loss="kullback-leibler", max_iter=n_iter, tol=0.0)
    return Hs.T


def _libnmfd(V, W, n_iter):
    import importlib

    lnmf = importlib.import_module("libnmfd.core.nmf")     # the package exports a function of that name
    lnmf.tnrange = lambda n, **_: range(n)      # its notebook progress bar needs ipywidgets
    scale = V.sum()
    _, H, _ = lnmf.nmf(V.copy(), W.shape[1], cost_func="KLDiv", num_iter=n_iter, init_W=W.copy(),
                       init_H=np.ones((W.shape[1], V.shape[1])), fix_W=True)
    return H * scale


def _same_fit(solve, V, W, target, repeats):
    """Fewest ladder iterations whose fit reaches target; (iterations, seconds, fit, reached)."""
    fit = np.inf
    for n in ITERATION_LADDER:
        fit = mean_kl(V, W, solve(V, W, n))
        if fit <= target:
            break
    seconds, H = _best(lambda: solve(V, W, n), repeats)
    return {"iterations": n, "seconds": seconds, "fit": fit, "reached": bool(fit <= target)}


def compare_solvers(preset: Preset, x: np.ndarray, sample_rate: int | None = None,
                    repeats: int = 3, max_frames: int | None = 4000) -> dict:
    """Time per frame (microseconds) of each solver on the frames of x, with ratios to the engine.

    x: mono audio at sample_rate (default: the preset's). max_frames limits the frames used.
    Keys: frames, bins, bands, templates, engine_solve, engine_frame (the whole engine per
    frame: FFT, solve, masks, overlap-add, triggers), sklearn_batch, sklearn_per_frame, libnmfd,
    ratios (time per frame of each over the engine's solve).
    """
    from threadpoolctl import threadpool_limits

    engine = Engine(preset, sample_rate)
    engine.warm()
    s, T, P = engine.settings, engine.tables, engine.params
    x = np.asarray(x, np.float32)
    V = np.ascontiguousarray(spectrogram(x, s))
    if max_frames:
        V = V[:, :max_frames]
        x = x[:V.shape[1] * s.hop]
    W = np.ascontiguousarray(T.W)
    K, N = V.shape
    R = W.shape[1]
    out = {"frames": N, "bins": K, "bands": int(T.Wb.shape[0]), "templates": R,
           "solver": {"method": preset.solver.method, "iterations": P.n_iter, "tolerance": P.tol}}
    H = np.zeros((R, N))
    args = (T.Wb, T.Wbt, T.WtW, T.Wt1, P.pg_step, T.band_edges, V, P.method, P.n_iter, P.tol, P.warm_decay,
            P.h_floor, H)
    engine_solve(*args)                                                   # compile or load
    with threadpool_limits(1):
        t, iters = _best(lambda: engine_solve(*args), repeats)
        target = mean_kl(V, W, H)
        out["engine_solve"] = {"us_per_frame": t / N * 1e6, "fit": target, "mean_iterations": iters / N}
        t, _ = _best(lambda: (engine.reset(), engine.process_into(
            x, np.zeros((len(x), len(engine.stem_names)), np.float32), np.zeros(4096, EVENT_DTYPE))),
            repeats)
        out["engine_frame"] = {"us_per_frame": t / N * 1e6}
        r = _same_fit(_sklearn, V, W, target, repeats)
        out["sklearn_batch"] = {**r, "us_per_frame": r["seconds"] / N * 1e6}
        n_pf = min(N, PER_FRAME_CALLS)
        cols = np.linspace(0, N - 1, n_pf).astype(int)
        t, _ = _best(lambda: [_sklearn(V[:, [m]], W, r["iterations"]) for m in cols], 1)
        out["sklearn_per_frame"] = {"iterations": r["iterations"], "us_per_frame": t / n_pf * 1e6}
        r = _same_fit(_libnmfd, V, W, target, repeats)
        out["libnmfd"] = {**r, "us_per_frame": r["seconds"] / N * 1e6}
    base = out["engine_solve"]["us_per_frame"]
    out["ratios"] = {k: out[k]["us_per_frame"] / base
                     for k in ("engine_frame", "sklearn_batch", "sklearn_per_frame", "libnmfd")}
    return out


def markdown(res: dict) -> str:
    """The comparison as a Markdown table."""
    rows = [("rtdrums frame solve", res["engine_solve"], f"{res['engine_solve']['mean_iterations']:.1f} (mean)"),
            ("rtdrums whole frame (FFT, solve, masks, OLA, triggers)", res["engine_frame"], "-"),
            ("scikit-learn NMF, all frames at once", res["sklearn_batch"], None),
            ("scikit-learn NMF, one call per frame", res["sklearn_per_frame"], None),
            ("libnmfd NMF, all frames at once", res["libnmfd"], None)]
    lines = [f"{res['frames']} frames, {res['bins']} bins ({res['bands']} solve bands), {res['templates']} templates, one thread.",
             "", "| solver | iterations | us per frame | x engine solve | fit (mean KL per frame) |",
             "|---|---|---|---|---|"]
    ratios = {"engine_frame": res["ratios"]["engine_frame"], "sklearn_batch": res["ratios"]["sklearn_batch"],
              "sklearn_per_frame": res["ratios"]["sklearn_per_frame"], "libnmfd": res["ratios"]["libnmfd"]}
    keys = ["engine_solve", "engine_frame", "sklearn_batch", "sklearn_per_frame", "libnmfd"]
    for (name, r, it), key in zip(rows, keys):
        it = it or (str(r["iterations"]) + ("" if r.get("reached", True) else " (fit not reached)"))
        fit = f"{r['fit']:.4g}" if "fit" in r else "-"
        ratio = "1" if key == "engine_solve" else f"{ratios[key]:.1f}"
        lines.append(f"| {name} | {it} | {r['us_per_frame']:.1f} | {ratio} | {fit} |")
    return "\n".join(lines)
