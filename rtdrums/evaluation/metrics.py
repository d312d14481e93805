"""Scores of one method on one mixture: onsets, latency, velocity, stem quality.

Times are in seconds, latencies in milliseconds. Onset matching is mir_eval's (each reference
onset matched at most once, within the tolerance window); latency is measured on the hits
matched at the 50 ms tolerance, as emitted time minus true onset.
"""

from __future__ import annotations

import numpy as np

WINDOWS = (0.050, 0.020)      # onset tolerance windows in seconds


def onset_scores(reference: np.ndarray, estimated: np.ndarray, window: float) -> dict:
    """Counts and precision/recall/F of estimated against reference onset times (seconds)."""
    import mir_eval

    ref, est = np.sort(np.asarray(reference, float)), np.sort(np.asarray(estimated, float))
    matched = len(mir_eval.util.match_events(ref, est, window)) if len(ref) and len(est) else 0
    return counts_to_prf(len(ref), len(est), matched)


def counts_to_prf(n_ref: int, n_est: int, n_match: int, beta: float = 1.0) -> dict:
    """P, R, F (F_beta) from counts (pooled over files); an empty reference and estimate is perfect."""
    if n_ref == 0 and n_est == 0:
        p = r = f = 1.0
    else:
        p = n_match / n_est if n_est else 0.0
        r = n_match / n_ref if n_ref else 0.0
        b2 = beta * beta
        f = (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0
    return {"ref": int(n_ref), "est": int(n_est), "matched": int(n_match),
            "precision": p, "recall": r, "f": f}


def match(reference: np.ndarray, estimated: np.ndarray, window: float = WINDOWS[0]) -> np.ndarray:
    """(n, 2) index pairs (reference, estimate) of matched onsets, by reference time."""
    import mir_eval

    if not len(reference) or not len(estimated):
        return np.zeros((0, 2), np.int64)
    pairs = np.array(mir_eval.util.match_events(np.asarray(reference, float),
                                                np.asarray(estimated, float), window), np.int64)
    return pairs[np.argsort(pairs[:, 0])] if len(pairs) else np.zeros((0, 2), np.int64)


def latencies_ms(reference: np.ndarray, estimated: np.ndarray, emitted: np.ndarray,
                 window: float = WINDOWS[0]) -> np.ndarray:
    """emitted - true onset (ms) of every matched hit; estimated times decide the matching."""
    pairs = match(reference, estimated, window)
    return (np.asarray(emitted, float)[pairs[:, 1]] - np.asarray(reference, float)[pairs[:, 0]]) * 1e3


def latency_summary(lat_ms: np.ndarray) -> dict:
    """Median, 95th and 99th percentiles (numpy's linear interpolation) and maximum of latencies
    in ms (None when there are none)."""
    lat = np.asarray(lat_ms, float)
    if not lat.size:
        return {"n": 0, "median": None, "p95": None, "p99": None, "max": None}
    return {"n": int(lat.size), "median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)), "max": float(lat.max())}


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None with fewer than 3 pairs or a constant side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float | None:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals made zero-mean."""
    s = np.asarray(reference, np.float64) - np.mean(reference)
    e = np.asarray(estimate, np.float64) - np.mean(estimate)
    ss = np.dot(s, s)
    if ss <= 0:
        return None
    target = np.dot(e, s) / ss * s
    noise = e - target
    return float(10 * np.log10(max(np.dot(target, target), 1e-300) / max(np.dot(noise, noise), 1e-300)))


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float | None:
    """BSS-eval SDR in dB (512-tap distortion filter) of one source, by fast_bss_eval.

    fast_bss_eval is maintained and gives mir_eval's bss_eval_sources values (mir_eval.separation
    is deprecated). A source's SDR depends only on its own reference and estimate, so each drum is
    scored alone. None when the reference is silent; -inf when the estimate is silent.
    """
    import fast_bss_eval

    ref = np.asarray(reference, np.float64)[None, :]
    est = np.asarray(estimate, np.float64)[None, :]
    if not np.any(ref):
        return None
    if not np.any(est):
        return float("-inf")
    return float(fast_bss_eval.sdr(ref, est, filter_length=512)[0])


def summarise(values) -> float | None:
    """Mean of the finite values (None if there are none)."""
    v = np.array([x for x in values if x is not None], float)
    v = v[np.isfinite(v)] if v.size else v
    return float(v.mean()) if v.size else None
