"""Baselines run on the same mixtures as the engine.

offline_nmf    the engine's upper bound: KL-NMF with the engine's templates (all bins, converged)
               over the whole spectrogram of the engine's frames, the same soft masks, and a
               non-causal peak picker (pick_onsets) on the drum activations.
oracle_masks   the ceiling of any masking on the engine's frames: masks of the same kind computed
               from the exact stems' spectra instead of a model (stems only, no onsets).
libnmfd_nmfd   libnmfd's NMFD drum separation as in its drum demo (2048/512 STFT, R = 3 kick/snare/
               hi-hat, T = 8 template frames, 30 iterations, templates initialised from isolated
               hits by its own `initialize_drum_specific_nmfd_templates`, alpha-Wiener filter with
               alpha = 1): here the hits are the kit's own samples, as the demo's are its own;
               the templates are learnt once per kit (libnmfd_templates) and not timed.
band_trigger   a naive trigger: a band-pass filter per drum, a 2 ms energy envelope and a
               threshold at a fixed fraction of the track's envelope peak, decided per block.
Each returns a BaselineResult; onset times are in seconds of its input.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..dsp.nmf import nmf
from ..dsp.stft import frame_spectra, synthesis_window

DRUMS = ("kick", "snare", "hihat")


class BaselineResult(NamedTuple):
    stems: dict[str, np.ndarray] | None      # drum -> audio aligned with the input (None: no stems)
    onsets: dict[str, np.ndarray] | None     # drum -> estimated onset times (s) (None: no onsets)
    emitted: dict[str, np.ndarray] | None    # drum -> time the trigger is sent (s), causal methods
    activations: np.ndarray | None           # (drums, frames)
    frame_rate: float | None
    seconds: float                           # processing time


def pick_onsets(acts: np.ndarray, frame_rate: float, rel: float = 0.04, median_ms: float = 19.0,
                lag_ms: float = 11.0, local_ms: float = 30.0, cross: float = 0.5) -> list[np.ndarray]:
    """Onset frames of each drum's activation (drums x frames): a non-causal peak picker.

    Each activation is scaled to its maximum and median-filtered over median_ms (one-frame
    spikes of a per-frame solve are not hits); the onset strength is its rise above the minimum of
    the previous lag_ms. A hit is a strength maximum within +-local_ms that reaches rel and is at
    least `cross` times every other drum's strength there (cross-talk); its onset is the frame
    where that rise starts. Parameters were set on the validation grooves.
    """
    from scipy.ndimage import maximum_filter1d, median_filter, minimum_filter1d

    A = np.asarray(acts, float)
    A = A / np.maximum(A.max(axis=1, keepdims=True), 1e-12)
    med = max(1, int(round(median_ms / 1000 * frame_rate))) | 1
    A = median_filter(A, size=(1, med), mode="nearest")
    lag = max(1, int(round(lag_ms / 1000 * frame_rate)))
    before = np.concatenate([A[:, :1], minimum_filter1d(A, lag, axis=1, origin=(lag - 1) // 2,
                                                        mode="nearest")[:, :-1]], axis=1)
    S = np.maximum(A - before, 0.0)
    w = max(1, int(round(local_ms / 1000 * frame_rate)))
    out = []
    for d in range(len(S)):
        s = S[d]
        ok = (s >= maximum_filter1d(s, 2 * w + 1, mode="constant")) & (s >= rel)
        if len(S) > 1:
            ok &= s >= cross * np.delete(S, d, axis=0).max(axis=0)
        frames, last = [], -w - 1
        for f in np.flatnonzero(ok):
            if f - last > w:
                g = f
                while g > 0 and A[d, g] - A[d, g - 1] > 0.02 * s[f]:
                    g -= 1
                frames.append(g)
                last = f
        out.append(np.array(frames, np.int64))
    return out


# -- the engine's upper bound -------------------------------------------------------------------
def offline_nmf(x: np.ndarray, engine, n_iter: int = 60, chunk: int = 2048) -> BaselineResult:
    """Non-causal NMF with the engine's templates and masks over the whole of x (see module doc).

    Frames are those the engine sees (rtdrums.dsp.stft), W the engine's templates on all bins, and
    each frame's h converged from a cold start: what the streaming solver approximates.
    Overlap-adding the masked frames with the engine's synthesis window gives stems aligned with x.
    """
    s, W, gs = engine.settings, engine.tables.W, engine.tables.group_start
    a, D = engine.preset.mask_exponent, len(engine.drum_names)
    x = np.asarray(x, np.float64)
    n_frames = (len(x) + s.n_fft) // s.hop
    out = np.zeros((D, len(x) + s.n_fft))
    acts = np.zeros((D, n_frames))
    t0 = time.perf_counter()
    for c0 in range(0, n_frames, chunk):
        c1 = min(n_frames, c0 + chunk)
        X = frame_spectra(x, s, c0, c1).T                    # (K, n)
        _, H = nmf(np.abs(X), W.shape[1], n_iter=n_iter, W0=W, fix_W=True)
        model = np.stack([W[:, gs[g]:gs[g + 1]] @ H[gs[g]:gs[g + 1]] for g in range(D + 1)]) ** a
        masks = model[:D] / np.maximum(model.sum(axis=0), 1e-30)
        for d in range(D):
            acts[d, c0:c1] = H[gs[d]:gs[d + 1]].sum(axis=0)
            _overlap_add(out[d], masks[d] * X, c0, s)
    seconds = time.perf_counter() - t0
    frame_rate = s.sample_rate / s.hop
    offset = engine.params.onset_offset                      # as the engine's onset estimate
    onsets = {name: ((f + 1) * s.hop - offset) / s.sample_rate
              for name, f in zip(engine.drum_names, pick_onsets(acts, frame_rate))}
    stems = {name: out[d, :len(x)].astype(np.float32) for d, name in enumerate(engine.drum_names)}
    return BaselineResult(stems, onsets, None, acts, frame_rate, seconds)


def _overlap_add(out: np.ndarray, spectra: np.ndarray, first: int, s) -> None:
    """Overlap-add the engine's synthesis of complex frame spectra (K, n), frames first.., into out."""
    ws = synthesis_window(s)[s.n_fft - s.synthesis:]
    y = np.fft.irfft(spectra, n=s.n_fft, axis=0)[s.n_fft - s.synthesis:] * ws[:, None]
    for j in range(y.shape[1]):
        end = (first + j + 1) * s.hop
        lo = end - s.synthesis
        seg = y[:, j]
        if lo < 0:
            seg, lo = seg[-lo:], 0
        out[lo:end] += seg[:max(0, min(end, len(out)) - lo)]


def oracle_masks(stems: dict[str, np.ndarray], engine, chunk: int = 2048) -> BaselineResult:
    """Each drum's stem through the engine's frames and synthesis with masks from the exact stems.

    The mask of drum d is |X_d|^a / sum_s |X_s|^a over the drums and the rest of the mix (a the
    preset's mask exponent), the engine's kind of mask with the true spectra in place of the
    templates' model: how far masking these frames can go at all.
    """
    s, a, names = engine.settings, engine.preset.mask_exponent, engine.drum_names
    x = np.sum([np.asarray(v, np.float64) for v in stems.values()], axis=0)
    sources = [np.asarray(stems[d], np.float64) for d in names]
    sources.append(x - np.sum(sources, axis=0))
    n_frames = (len(x) + s.n_fft) // s.hop
    out = np.zeros((len(names), len(x) + s.n_fft))
    t0 = time.perf_counter()
    for c0 in range(0, n_frames, chunk):
        c1 = min(n_frames, c0 + chunk)
        X = [frame_spectra(v, s, c0, c1).T for v in sources]
        power = [np.abs(v) ** a for v in X]
        total = np.maximum(np.sum(power, axis=0), 1e-30)
        mix = np.sum(X, axis=0)
        for d in range(len(names)):
            _overlap_add(out[d], power[d] / total * mix, c0, s)
    return BaselineResult({d: out[i, :len(x)].astype(np.float32) for i, d in enumerate(names)},
                          None, None, None, None, time.perf_counter() - t0)


# -- libnmfd NMFD -------------------------------------------------------------------------------
def _libnmfd():
    """libnmfd's NMFD modules, with its notebook progress bars (tqdm.tnrange) made plain ranges."""
    from libnmfd.core import nmfconv
    from libnmfd.dsp import filters, transforms

    nmfconv.tnrange = lambda n, **_: range(n)
    return nmfconv, filters, transforms


LIBNMFD_RATE, LIBNMFD_BLOCK, LIBNMFD_HOP = 44100, 2048, 512
LIBNMFD_LAG_FRAMES = 2.5


def libnmfd_templates(hits: dict[str, list[np.ndarray]], num_iter: int = 30,
                      num_template_frames: int = 8) -> list[np.ndarray]:
    """NMFD templates (K x T each) of kick, snare, hi-hat from isolated hits (44.1 kHz audio).

    libnmfd's own `initialize_drum_specific_nmfd_templates`, which reads one folder of files per
    drum: the hits are written to a temporary folder for it. Done once per kit.
    """
    import soundfile as sf

    nmfconv, _, _ = _libnmfd()
    with tempfile.TemporaryDirectory() as tmp:
        for drum in DRUMS:
            (Path(tmp) / drum).mkdir()
            for i, h in enumerate(hits[drum]):
                if np.any(h):
                    sf.write(Path(tmp) / drum / f"{i:03d}.wav", h, LIBNMFD_RATE, subtype="FLOAT")
        init_W = nmfconv.initialize_drum_specific_nmfd_templates(
            list(DRUMS), num_iter=num_iter, num_template_frames=num_template_frames,
            block_size=LIBNMFD_BLOCK, hop_size=LIBNMFD_HOP, fs=LIBNMFD_RATE, input_dir=tmp)
    return [w / (w.sum() + 1e-12) for w in init_W]


def libnmfd_nmfd(x: np.ndarray, init_W: list[np.ndarray], num_iter: int = 30,
                 num_template_frames: int = 8) -> BaselineResult:
    """libnmfd's drum-demo NMFD of x (44.1 kHz) from templates of libnmfd_templates.

    The time covers STFT, NMFD, Wiener filtering and inverse STFT (not the templates).
    """
    nmfconv, filters, transforms = _libnmfd()
    x = np.asarray(x, np.float64)
    t0 = time.perf_counter()
    X, A, P = transforms.forward_stft(x.copy(), block_size=LIBNMFD_BLOCK, hop_size=LIBNMFD_HOP,
                                      reconst_mirror=True, append_frames=True)
    n_frames = A.shape[1]
    init_H = nmfconv.init_activations(num_comp=3, num_frames=n_frames, strategy="uniform")
    _, H, V_est, _, _ = nmfconv.nmfd(V=A, num_comp=3, num_frames=n_frames, num_iter=num_iter,
                                     num_template_frames=num_template_frames,
                                     init_W=[w.copy() for w in init_W], init_H=init_H)
    A_est, _ = filters.alpha_wiener_filter(A, V_est, 1.0)
    stems = {}
    for k, drum in enumerate(DRUMS):
        y, _ = transforms.inverse_stft(A_est[k] * np.exp(1j * P), block_size=LIBNMFD_BLOCK,
                                       hop_size=LIBNMFD_HOP, reconst_mirror=True,
                                       append_frames=True, num_samp=len(x))
        stems[drum] = np.asarray(y, np.float32).reshape(-1)[:len(x)]
    seconds = time.perf_counter() - t0
    frame_rate = LIBNMFD_RATE / LIBNMFD_HOP
    # frame m is centred on sample m * hop, and an NMFD activation leads its hit: the template's
    # first frames already hold the attack. The lag, LIBNMFD_LAG_FRAMES, is the median measured
    # on the validation grooves.
    onsets = {d: (f + LIBNMFD_LAG_FRAMES) / frame_rate for d, f in zip(DRUMS, pick_onsets(H, frame_rate))}
    return BaselineResult(stems, onsets, None, H, frame_rate, seconds)


# -- naive band-energy trigger -------------------------------------------------------------------
BANDS = {"kick": (None, 100.0), "snare": (180.0, 500.0), "hihat": (7000.0, None)}
THRESHOLDS = {"kick": 0.01, "snare": 0.05, "hihat": 0.01}    # set on the validation grooves


def band_trigger(x: np.ndarray, sample_rate: int, block: int = 128,
                 thresholds: dict[str, float] = THRESHOLDS, envelope_ms: float = 2.0,
                 retrigger_ms: float = 30.0) -> BaselineResult:
    """Causal band-energy trigger per drum (bands in BANDS, 4th-order Butterworth).

    The envelope is the one-pole-smoothed squared band signal; a hit is an upward crossing of the
    drum's threshold (THRESHOLDS) times the track's envelope peak (the gain a user sets once per
    track), re-armed when the envelope falls below half the threshold, and not within
    retrigger_ms of the last.
    The note-on is emitted at the end of the audio block that holds the crossing.
    """
    from scipy.signal import butter, lfilter, sosfilt

    x = np.asarray(x, np.float64)
    t0 = time.perf_counter()
    alpha = 1.0 - np.exp(-1.0 / (envelope_ms / 1000 * sample_rate))
    onsets, emitted = {}, {}
    for drum, (lo, hi) in BANDS.items():
        if lo is None:
            sos = butter(4, hi, "lowpass", fs=sample_rate, output="sos")
        elif hi is None:
            sos = butter(4, lo, "highpass", fs=sample_rate, output="sos")
        else:
            sos = butter(4, (lo, hi), "bandpass", fs=sample_rate, output="sos")
        env = lfilter([alpha], [1.0, alpha - 1.0], sosfilt(sos, x) ** 2)
        thr = thresholds[drum] * env.max() if env.max() > 0 else np.inf
        hits, last = [], -np.inf
        gap = retrigger_ms / 1000 * sample_rate
        above = env >= thr
        for i in np.flatnonzero(above[1:] != above[:-1]) + 1:     # crossings alternate up, down
            if above[i] and i - last >= gap:
                hits.append(i)
                last = i
        hits = np.array(hits, np.int64)
        # re-arm only once below half the threshold: drop crossings without such a dip before them
        keep = [k for k, i in enumerate(hits) if k == 0 or env[hits[k - 1]:i].min() < thr / 2]
        hits = hits[keep]
        onsets[drum] = hits / sample_rate
        emitted[drum] = ((hits // block) + 1) * block / sample_rate
    return BaselineResult(None, onsets, emitted, None, None, time.perf_counter() - t0)
