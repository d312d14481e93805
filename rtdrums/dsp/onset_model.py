"""The learned trigger: a small network that tells, frame by frame, whether a drum was just struck.

The threshold detector (rtdrums.dsp.onsets) waits for a drum's activation to rise by a fraction of a
loud hit, which a recorded hit's attack reaches only after 5-15 ms, and it cannot tell a ghost
note from the leak of a hi-hat. The onset model reads, each frame, the log magnitudes of the
spectrum in Z_B log-spaced bands, the log activations of the R templates and the log magnitudes
of a short window of the newest samples (n_fft / 8: 256 at 48 kHz) in Z_S bands, and how each of
them changed over the last 1, 2 and 3 frames (F = 4 (Z_B + R + Z_S) features). The long window
tells the drums apart; the short one shows an attack at full contrast in the first frame that
holds it, over the ring of earlier hits, and its level is that of the attack's first milliseconds. One hidden layer of ReLU
units gives a probability per drum, and a score per articulation of each drum (closed, open, pedal
hi-hat: A in all); a drum triggers at once when its probability crosses its threshold, outside its
retrigger time. The note-on leaves the drum's `scan` frames later (its scan_ms, else the preset's
[trigger] scan_ms; 0 to SCANS - 1 frames; 0 by default), with the note of the drum's articulation
that scores highest in that frame and a velocity from a linear read-out of that frame's features,
trained for that scan; where the model has a velocity map (vel_map), the read-out is a loudness
score that the articulation's monotone piecewise-linear curve turns into the velocity
(rtdrums.training.velocity_fit). It is trained on grooves rendered with the kit(s) it is for
(rtdrums.training.onset_training).

A model may hold K networks on the same features (an ensemble: the first and its `members`,
rtdrums.training.ensemble): each frame the K networks' probabilities are averaged per drum and per
articulation, and their velocities per note, before the decision rule above; one network (K = 1)
computes exactly what it did before ensembles existed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit

from .onsets import SI_LAST, SI_ONSET, SI_PENDING

LAGS = 3                   # features compare each frame with the 1, 2 and 3 frames before
SCANS = 3                  # velocity read-outs for a note sent 0, 1 or 2 frames after the decision
BAND_EPS = 1e-6            # floor of the band magnitudes (full-scale sine in one bin = 0.5)
ACT_EPS = 1e-6             # floor of the activations, on the same scale


SHORT_DIVISOR = 8          # the short window is n_fft / 8 samples long
SHORT_TAPER_DIVISOR = 8    # and falls over its last eighth (32 samples at 48 kHz)


def feature_count(bands: int, components: int, short_bands: int = 0) -> int:
    """F: a frame's band levels, activations and short-window band levels, and their changes over
    the last LAGS frames."""
    return (LAGS + 1) * (bands + components + short_bands)


@dataclass(frozen=True)
class OnsetModel:
    """Weights of the onset model (see the module docstring for F, Z_B, R; D drums, U hidden).

    band_hz (Z_B + 1,) band edges; mean, scale (F,) feature standardisation; w1 (F, U), b1 (U,),
    w2 (U, D + A), b2 (D + A,) the network (a logit per drum, then per articulation of the drums,
    in the preset's order); vel_w (SCANS, F, D), vel_b (SCANS, D) the velocity read-outs
    (velocity / 127 from standardised features) for each scan; threshold (D,) probabilities that
    trigger; retrigger_ms; short_hz (Z_S + 1,) band edges of the short window, empty (0,) for a
    model without it (presets trained before it); vel_map (SCANS, A, 2, P) per scan and articulation
    the knots (read-out score, increasing) and velocities / 127 (non-decreasing) of the curve that
    maps the read-out to the velocity, empty (0, A, 2, 2) for a model whose read-out is the velocity
    itself (presets trained before it); vel_h (SCANS, U, D) per scan the weights of the network's
    own hidden units (after the ReLU) in its read-out, empty (0, 0, 0) for a read-out of the
    features alone (presets trained before it).
    """
    band_hz: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    vel_w: np.ndarray
    vel_b: np.ndarray
    threshold: tuple[float, ...]
    retrigger_ms: float = 30.0
    short_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vel_map: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 2, 2)))
    vel_h: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    members: tuple["OnsetModel", ...] = ()     # networks 2..K; their threshold and retrigger_ms are unused

    ARRAYS = ("band_hz", "mean", "scale", "w1", "b1", "w2", "b2", "vel_w", "vel_b", "short_hz", "vel_map", "vel_h")
    # arrays older presets lack, and their value there
    OPTIONAL = {"short_hz": (0,), "vel_map": (0, 0, 2, 2), "vel_h": (0, 0, 0)}
    # each network's own arrays; the others (bands, thresholds, retrigger) are the first network's
    NETWORK_ARRAYS = ("mean", "scale", "w1", "b1", "w2", "b2", "vel_w", "vel_b", "vel_map", "vel_h")

    @property
    def networks(self) -> tuple["OnsetModel", ...]:
        """The K networks whose probabilities are averaged: this one, then its members."""
        return (replace(self, members=()),) + self.members

    @property
    def short_bands(self) -> int:
        return max(len(self.short_hz) - 1, 0)

    @property
    def n_features(self) -> int:
        return self.w1.shape[0]

    def validate(self, drums: int, components: int, articulations: int) -> None:
        """Raise ValueError with a one-line reason if the arrays do not fit each other and the preset."""
        F = feature_count(len(self.band_hz) - 1, components, self.short_bands)
        U = self.b1.shape[0] if self.b1.ndim == 1 else -1
        O = drums + articulations
        shapes = {"mean": (F,), "scale": (F,), "w1": (F, U), "b1": (U,), "w2": (U, O),
                  "b2": (O,), "vel_w": (SCANS, F, drums), "vel_b": (SCANS, drums)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"onset model: {name} has shape {getattr(self, name).shape}, "
                                 f"expected {shape} for {drums} drums ({articulations} articulations) "
                                 f"and {components} templates")
        for name in self.ARRAYS:
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"onset model: {name} contains NaN or infinite values")
        for name in ("band_hz", "short_hz"):
            hz = getattr(self, name)
            if (len(hz) < 2 and name == "band_hz") or len(hz) == 1 or np.any(np.diff(hz) <= 0) \
                    or np.any(hz < 0):
                raise ValueError(f"onset model: {name} must be increasing frequencies >= 0")
        validate_vel_map(self.vel_map, articulations)
        if self.vel_h.size and self.vel_h.shape != (SCANS, U, drums):
            raise ValueError(f"onset model: vel_h has shape {self.vel_h.shape}, expected {(SCANS, U, drums)}")
        if np.any(self.scale <= 0):
            raise ValueError("onset model: scale must be > 0")
        if len(self.threshold) != drums or not all(0 < t < 1 for t in self.threshold):
            raise ValueError(f"onset model: threshold needs {drums} probabilities between 0 and 1")
        if not self.retrigger_ms >= 0:
            raise ValueError("onset model: retrigger_ms must be >= 0")
        for k, m in enumerate(self.members, 2):
            if m.members or not (np.array_equal(m.band_hz, self.band_hz) and np.array_equal(m.short_hz, self.short_hz)
                                 and m.b1.shape == self.b1.shape):
                raise ValueError(f"onset model: network {k} differs from the first in its bands or hidden size")
            try:
                m.validate(drums, components, articulations)
            except ValueError as e:
                raise ValueError(f"network {k}: {e}") from None


def validate_vel_map(vel_map: np.ndarray, articulations: int) -> None:
    """Raise ValueError unless vel_map is empty or (SCANS, A, 2, P) monotone curves."""
    if vel_map.size == 0:
        return
    if vel_map.ndim != 4 or vel_map.shape[:3] != (SCANS, articulations, 2) or vel_map.shape[3] < 2:
        raise ValueError(f"onset model: vel_map has shape {vel_map.shape}, expected "
                         f"({SCANS}, {articulations}, 2, knots >= 2)")
    if np.any(np.diff(vel_map[:, :, 0], axis=-1) <= 0) or np.any(np.diff(vel_map[:, :, 1], axis=-1) < 0):
        raise ValueError("onset model: vel_map needs increasing knots and non-decreasing velocities")


def default_band_hz(n_bands: int = 80, f_min: float = 30.0, f_max: float = 20000.0) -> np.ndarray:
    """Log-spaced band edges for the model's spectral features."""
    return np.geomspace(f_min, f_max, n_bands + 1)


def default_short_hz(n_bands: int = 16, f_min: float = 150.0, f_max: float = 20000.0) -> np.ndarray:
    """Log-spaced band edges of the short window's features (its bins are 187.5 Hz apart)."""
    return np.geomspace(f_min, f_max, n_bands + 1)


def short_length(n_fft: int) -> int:
    """Samples of the short window at a frame length."""
    return max(n_fft // SHORT_DIVISOR, 8)


def short_bins(short_hz: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """band_bins of the short window's bands; (1,) zeros (no band) when short_hz is empty."""
    if len(short_hz) == 0:
        return np.zeros(1, np.int64)
    return band_bins(short_hz, sample_rate, short_length(n_fft))


def band_bins(band_hz: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Bin ranges of the bands at a rate: start bins (Z_B + 1,), each band at least one bin wide;
    bands above Nyquist are empty (the features read them as silence)."""
    K = n_fft // 2 + 1
    edges = np.clip(np.round(np.asarray(band_hz) * n_fft / sample_rate).astype(np.int64), 0, K - 1)
    for i in range(1, len(edges)):
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return np.minimum(edges, K)


def folded(model: OnsetModel, sens: np.ndarray, scan: np.ndarray,
           group_art: np.ndarray) -> dict[str, np.ndarray]:
    """The network with the standardisation folded into the first layer and each drum's velocity
    read-out of its scan (frames, one per drum: feature weights, hidden-unit weights (U, D), (0, D)
    without them) and its articulations' velocity maps of that scan (group_art as in detect), and
    the thresholds as logits lowered by log(sensitivity)."""
    inv = 1.0 / model.scale
    w1 = model.w1 * inv[:, None]
    drums = np.arange(len(scan))
    raw_w = model.vel_w[scan, :, drums].T                     # (F, D): drum d's column of its scan
    vel_w, vel_b = raw_w * inv[:, None], model.vel_b[scan, drums]
    thr = np.array([math.log(t / (1 - t)) for t in model.threshold]) - np.log(sens)
    vel_h = model.vel_h[scan, :, drums].T if model.vel_h.size else np.zeros((0, len(scan)))
    return dict(m_vel_map=scan_vel_map(model.vel_map, scan, group_art), m_vel_h=np.ascontiguousarray(vel_h),
                m_w1=np.ascontiguousarray(w1), m_b1=model.b1 - (model.mean * inv) @ model.w1,
                m_w2=np.ascontiguousarray(model.w2), m_b2=np.array(model.b2, np.float64),
                m_vel_w=np.ascontiguousarray(vel_w), m_vel_b=vel_b - (model.mean * inv) @ raw_w,
                m_logit=thr)


def folded_networks(model: OnsetModel, sens: np.ndarray, scan: np.ndarray,
                    group_art: np.ndarray) -> dict[str, np.ndarray]:
    """folded() of each of the K networks, stacked on a first axis of K (m_logit, shared, is
    not). Velocity curves with fewer knots than the longest are extended flat beyond their end;
    where some networks have curves and others not, the others get the identity (their read-out
    is the velocity), exact to 1e-12 over the velocities a note can have; where some networks read
    their hidden units and others not, the others' hidden-unit weights are zeros."""
    nets = [folded(m, sens, scan, group_art) for m in model.networks]
    U = max(n["m_vel_h"].shape[0] for n in nets)
    for n in nets:
        if n["m_vel_h"].shape[0] < U:
            n["m_vel_h"] = np.zeros((U, len(scan)))
    out = {k: np.ascontiguousarray(np.stack([n[k] for n in nets])) for k in nets[0] if k not in ("m_logit", "m_vel_map")}
    maps = [n["m_vel_map"] for n in nets]
    A = max(vm.shape[0] for vm in maps)
    P = max(vm.shape[-1] for vm in maps)
    for k, vm in enumerate(maps):
        if A and not vm.shape[0]:
            vm = np.broadcast_to(np.array([[-1e3, 1e3], [-1e3, 1e3]]), (A, 2, 2))
        extra = P - vm.shape[-1]
        if extra and A:
            x = vm[:, 0, -1:] + np.arange(1, extra + 1)            # knots past the end, same velocity
            vm = np.concatenate([vm, np.stack([x, np.repeat(vm[:, 1, -1:], extra, axis=1)], axis=1)], axis=2)
        maps[k] = vm
    return dict(out, m_vel_map=np.ascontiguousarray(np.stack(maps)), m_logit=nets[0]["m_logit"])


def scan_vel_map(vel_map: np.ndarray, scan: np.ndarray, group_art: np.ndarray) -> np.ndarray:
    """(A, 2, P): each articulation's curve for its drum's scan; (0, 2, 2) without a map."""
    if vel_map.size == 0:
        return np.zeros((0, 2, 2))
    out = np.empty(vel_map.shape[1:])
    for d in range(len(scan)):
        out[group_art[d]:group_art[d + 1]] = vel_map[scan[d], group_art[d]:group_art[d + 1]]
    return out


@njit(cache=True, nogil=True)
def mapped_velocity(v, vel_map, a):
    """Velocity / 127 of read-out v on articulation a's curve (flat beyond its end knots); v itself
    when there is no map."""
    if vel_map.shape[0] == 0:
        return v
    x, y = vel_map[a, 0], vel_map[a, 1]
    P = x.shape[0]
    if not v > x[0]:                 # also maps NaN to the softest
        return y[0]
    for k in range(1, P):
        if v <= x[k]:
            t = (v - x[k - 1]) / (x[k] - x[k - 1])
            return y[k - 1] + t * (y[k] - y[k - 1])
    return y[P - 1]


@njit(cache=True, nogil=True)
def frame_features(mag, h, edges, norm, zring, frame, feat, smag, sedges):
    """Write the features of one frame into feat (F,) and store its levels in zring (LAGS + 1, Z).

    mag (K,) the frame's magnitude spectrum, h (R,) its activations, edges the band start bins,
    norm the factor that puts magnitudes on a full-scale-sine = 0.5 scale, frame the frame count;
    smag the short window's magnitude spectrum and sedges its band start bins ((1,): none).
    """
    L = zring.shape[0]
    Z = zring.shape[1]
    B = edges.shape[0] - 1
    S = sedges.shape[0] - 1
    R = Z - B - S
    cur = frame % L
    for b in range(B):
        zring[cur, b] = _band_level(mag, edges, b, norm)
    for r in range(R):
        zring[cur, B + r] = math.log(h[r] * norm + ACT_EPS)
    for b in range(S):
        zring[cur, B + R + b] = _band_level(smag, sedges, b, norm)
    for z in range(Z):
        feat[z] = zring[cur, z]
    for lag in range(1, L):
        prev = (frame - lag) % L if frame >= lag else cur    # the first frames compare with themselves
        for z in range(Z):
            feat[lag * Z + z] = zring[cur, z] - zring[prev, z]


@njit(cache=True, nogil=True)
def _band_level(mag, edges, b, norm):
    """Log of the mean magnitude of band b (a band above Nyquist is empty: it holds nothing)."""
    width = edges[b + 1] - edges[b]
    if width <= 0:
        return math.log(BAND_EPS)
    acc = 0.0
    for k in range(edges[b], edges[b + 1]):
        acc += mag[k]
    return math.log(acc * norm / width + BAND_EPS)


@njit(cache=True, nogil=True)
def detect(feat, art_start, group_art, notes, w1, b1, w2, b2, vel_w, vel_b, vel_map, vel_h, logit, retrig,
           scan, hidden, out, istate, frame_end, onset_offset, events, n_events, dropped):
    """Run the K networks on one frame's features; append an event for each drum whose scan ends.

    w1 (K, F, U), b1 (K, U), w2 (K, U, O), b2 (K, O), vel_w (K, F, D), vel_b (K, D), vel_map (K, A,
    2, P), vel_h (K, U, D) the folded networks (folded_networks); hidden (K U,) and out (O,)
    scratch: they receive the networks' hidden units and the ensemble's logit of each output
    (ensemble_outputs). art_start, group_art as in onsets.detect: the note is that of the drum's
    articulation whose output scores highest in the frame the note-on is sent; its velocity the
    mean of the K networks' read-outs (of the features and the network's own hidden units), each
    on its own curve (mapped_velocity; (K, 0, 2, 2): none). istate (D, N_ISTATE) as in onsets:
    pending scan frames, onset, last trigger (stream samples). Returns the new number of events;
    overflow is counted in dropped[0].
    """
    ensemble_outputs(feat, w1, b1, w2, b2, hidden, out)
    return decide(feat, hidden, out, art_start, group_art, notes, vel_w, vel_b, vel_map, vel_h, logit, retrig,
                  scan, istate, frame_end, onset_offset, events, n_events, dropped)


@njit(cache=True, nogil=True)
def decide(feat, hidden, out, art_start, group_art, notes, vel_w, vel_b, vel_map, vel_h, logit, retrig, scan,
           istate, frame_end, onset_offset, events, n_events, dropped):
    """detect's decisions from the networks' hidden units `hidden` (K U,) and outputs `out`
    (ensemble_outputs) of the frame."""
    K, F = vel_w.shape[0], vel_w.shape[1]
    D, U = vel_b.shape[1], vel_h.shape[1]
    for d in range(D):
        if istate[d, SI_PENDING] > 0:
            istate[d, SI_PENDING] -= 1
            if istate[d, SI_PENDING] > 0:
                continue
        else:
            if out[d] <= logit[d] or frame_end - istate[d, SI_LAST] < retrig[d]:
                continue
            istate[d, SI_LAST] = frame_end
            istate[d, SI_ONSET] = frame_end - onset_offset
            if scan[d] > 0:
                istate[d, SI_PENDING] = scan[d]
                continue
        if n_events >= events.shape[0]:
            dropped[0] += 1
            continue
        best, score = group_art[d], -np.inf
        for a in range(group_art[d], group_art[d + 1]):
            if out[D + a] > score:
                best, score = a, out[D + a]
        v = 0.0
        for k in range(K):
            r = vel_b[k, d]
            for f in range(F):
                r += feat[f] * vel_w[k, f, d]
            for u in range(U):
                r += float(hidden[k * U + u]) * vel_h[k, u, d]
            v += mapped_velocity(r, vel_map[k], best)
        v /= K
        e = events[n_events]
        e["onset"] = istate[d, SI_ONSET]
        e["emitted"] = frame_end
        e["drum"] = d
        e["note"] = notes[art_start[best]]
        e["velocity"] = min(127, max(1, int(127.0 * v + 0.5)))
        n_events += 1
    return n_events


@njit(cache=True, nogil=True)
def ensemble_outputs(feat, w1, b1, w2, b2, hidden, out):
    """out[o]: the logit of the K networks' mean probability of output o; a single network's own
    logit, untouched by the round trip, so that K = 1 decides exactly as one network did.
    hidden (K U,) receives network k's hidden units (after the ReLU) at k U .. (k + 1) U - 1."""
    K, F, U = w1.shape
    _clear_outputs(out, K)
    for k in range(K):
        base = k * U
        for u in range(U):
            hidden[base + u] = b1[k, u]
        for f in range(F):           # rows of w1 are contiguous: the inner loop vectorises
            x = feat[f]
            for u in range(U):
                hidden[base + u] += x * w1[k, f, u]
        for u in range(U):
            if not hidden[base + u] > 0.0:  # also maps NaN to 0
                hidden[base + u] = 0.0
        _add_network(hidden, base, k, w2, b2, out)
    _mean_logit(out, K)


@njit(cache=True, nogil=True)
def _clear_outputs(out, K):
    """An ensemble sums its networks' probabilities into out; one network writes its logits."""
    if K > 1:
        out[:] = 0.0


@njit(cache=True, nogil=True)
def _add_network(hidden, base, k, w2, b2, out):
    """Network k's second layer on its hidden units hidden[base:base + U]: its logits into out
    when it is the only network, else its probabilities added to out."""
    K, U, O = w2.shape
    for o in range(O):
        z = b2[k, o]
        for u in range(U):
            z += float(hidden[base + u]) * w2[k, u, o]
        if K == 1:
            out[o] = z
        elif z >= 0.0:               # the logistic function, without overflow either way
            out[o] += 1.0 / (1.0 + math.exp(-z))
        else:
            out[o] += math.exp(z) / (1.0 + math.exp(z))


@njit(cache=True, nogil=True)
def _mean_logit(out, K):
    """An ensemble's summed probabilities to the logit of their mean."""
    if K > 1:
        for o in range(out.shape[0]):
            p = out[o] / K
            out[o] = -np.inf if p <= 0.0 else (np.inf if p >= 1.0 else math.log(p / (1.0 - p)))


def merged_first_layer(w1: np.ndarray, b1: np.ndarray, centre: np.ndarray | None = None,
                       dtype=np.int16) -> tuple[np.ndarray, ...]:
    """The K networks' first layers (K, F, U), (K, U) as one (F, K U) matrix of dtype (network k's
    units at columns k U .. (k + 1) U - 1), a float32 scale and a float32 centre per row (F,) and
    the (K U,) float32 bias, for ensemble_outputs_merged: hidden = bias + sum_f (feat_f - centre_f)
    scale_f w1m[f]. An integer dtype stores each row rounded to its largest magnitude over the
    type's largest value (the folded standardisation gives the rows ranges 60 times apart, so a
    scale per row loses far less than one per column); centre (F,), the features' usual level
    (e.g. the networks' mean), keeps the rounding error proportional to a feature's deviation
    from it, not to its level (log magnitudes sit around -10), the bias taking the centre's
    part exactly. A float dtype stores the weights themselves (scale 1)."""
    K, F, U = w1.shape
    w = w1.transpose(1, 0, 2).reshape(F, K * U)
    centre = np.zeros(F) if centre is None else np.asarray(centre, np.float64)
    bias = b1.reshape(K * U) + centre @ w
    if np.issubdtype(dtype, np.integer):
        scale = np.abs(w).max(axis=1, initial=0.0) / np.iinfo(dtype).max
        scale[scale == 0] = 1.0
        scale = scale.astype(np.float32).astype(np.float64)    # rounded with the scale the kernel reads
        q = np.round(w / scale[:, None])
    else:
        scale, q = np.ones(F), w
    return (np.ascontiguousarray(q, dtype), np.ascontiguousarray(scale, np.float32),
            np.ascontiguousarray(centre, np.float32), np.ascontiguousarray(bias, np.float32))


@njit(cache=True, nogil=True, fastmath={"contract"})     # fused multiply-adds
def ensemble_outputs_merged(feat, w1m, w1s, w1c, b1m, w2, b2, hidden, out):
    """ensemble_outputs with the first layers merged (merged_first_layer: w1m (F, K U) int16 by
    default, w1s its row scales, w1c its row centres; hidden (K U,) float32): one pass over the
    features, rows K times longer, accumulated in float32. In int16 the first layers are 0.6 MB
    (1.2 MB in float32, 2.3 MB in float64) and no trigger decision moves, where int8 moves some
    (python -m rtdrums.evaluation.trigger_precision); the second layer and the mean stay float64."""
    K = w2.shape[0]
    U = w2.shape[1]
    KU = w1m.shape[1]
    F = w1m.shape[0]
    for j in range(KU):
        hidden[j] = b1m[j]
    f4 = F - F % 4
    for f in range(0, f4, 4):        # four rows per pass: a quarter of the loads and stores of hidden
        x0 = np.float32(feat[f] - w1c[f]) * w1s[f]
        x1 = np.float32(feat[f + 1] - w1c[f + 1]) * w1s[f + 1]
        x2 = np.float32(feat[f + 2] - w1c[f + 2]) * w1s[f + 2]
        x3 = np.float32(feat[f + 3] - w1c[f + 3]) * w1s[f + 3]
        r0, r1, r2, r3 = w1m[f], w1m[f + 1], w1m[f + 2], w1m[f + 3]
        for j in range(KU):
            hidden[j] = (hidden[j] + x0 * np.float32(r0[j]) + x1 * np.float32(r1[j]) + x2 * np.float32(r2[j])
                         + x3 * np.float32(r3[j]))
    for f in range(f4, F):
        x = np.float32(feat[f] - w1c[f]) * w1s[f]
        row = w1m[f]
        for j in range(KU):
            hidden[j] += x * np.float32(row[j])
    for j in range(KU):
        if not hidden[j] > 0.0:      # also maps NaN to 0
            hidden[j] = 0.0
    _clear_outputs(out, K)
    for k in range(K):
        _add_network(hidden, k * U, k, w2, b2, out)
    _mean_logit(out, K)
