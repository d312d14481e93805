"""A preset compiled into the engine's tables at the engine's sample rate: templates mapped to its
bins and summed into solve bands, the solver's derived matrices, FFT plans, windows, the trigger
detector's and the learned trigger's settings in frames and samples. Built once per Engine; the
streaming path (rtdrums.engine) only reads them (adaptation excepted: see Tables)."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .dsp import encoder, fft, nmf, onset_model, onsets
from .dsp.stft import StftSettings, analysis_window, synthesis_window
from .preset import Preset, articulations


class Tables(NamedTuple):
    """Arrays derived from the preset at the engine's sample rate. Read-only, except that
    adaptation (rtdrums.dsp.adapt) moves W and its derived tables, W to Wt1; reset() restores them."""
    wa: np.ndarray            # (N,) analysis window
    ws: np.ndarray            # (N,) synthesis window
    W: np.ndarray             # (K, R) templates on the engine's bins
    Wt: np.ndarray            # (R, K) their transpose, contiguous
    Wb: np.ndarray            # (B, R) templates summed into solve bands
    Wbt: np.ndarray           # (R, B) their transpose, contiguous
    WtW: np.ndarray           # (R, R)
    Wt1: np.ndarray           # (R,)
    W0: np.ndarray            # (K, R) the trained templates: adaptation's bounds
    a_level: np.ndarray       # (G,) activation a group needs before a frame adapts it
    band_edges: np.ndarray    # (B + 1,) bin index where each band starts
    group_start: np.ndarray   # (G + 1,) first component of each drum, then residual, then R
    art_start: np.ndarray     # (A + 1,) first component of each articulation, then R
    group_art: np.ndarray     # (G + 1,) first articulation of each group, then A
    notes: np.ndarray         # (R,) MIDI note per component
    floor: np.ndarray         # (D,) absolute trigger thresholds
    sens: np.ndarray          # (D,)
    retrig: np.ndarray        # (D,) retrigger time in samples
    reference: np.ndarray     # (D + 1,) full-velocity rise of each drum, then the residual
    leak: np.ndarray          # (D + 1, D + 1) cross-talk: rise of group j per unit rise of group g
    rel: np.ndarray           # (D,) relative thresholds
    crosstalk: np.ndarray     # (D,) margins on the expected cross-talk
    scan: np.ndarray          # (D,) frames from a trigger decision to its note-on
    both: np.ndarray          # (D,) 1 where the threshold detector also triggers the drum beside the learned trigger
    lookback: np.ndarray      # (D + 1,) frames over which rises are measured
    fft_bitrev: np.ndarray
    fft_twiddle: np.ndarray
    fft_split: np.ndarray
    swin: np.ndarray          # (n_fft / 8,) the short window of the newest samples (onset_model)
    sfft_bitrev: np.ndarray   # and its FFT plan
    sfft_twiddle: np.ndarray
    sfft_split: np.ndarray
    # the learned trigger (rtdrums.dsp.onset_model; empty without one): standardisation folded in
    m_edges: np.ndarray       # (Z_B + 1,) start bins of its bands
    m_sedges: np.ndarray      # (Z_S + 1,) start bins of its short-window bands ((1,): none)
    # of each of its K networks (an ensemble when K > 1):
    m_w1: np.ndarray          # (K, F, U)
    m_b1: np.ndarray          # (K, U)
    m_w2: np.ndarray          # (K, U, D + A) a logit per drum, then per articulation of the drums
    m_b2: np.ndarray          # (K, D + A)
    m_vel_w: np.ndarray       # (K, F, D) the velocity read-out of the scan
    m_vel_b: np.ndarray       # (K, D)
    m_vel_map: np.ndarray     # (K, A, 2, P) velocity curve per articulation ((K, 0, 2, 2): none)
    m_vel_h: np.ndarray       # (K, U, D) the read-out's weights of the network's hidden units ((K, 0, D): none)
    m_logit: np.ndarray       # (D,) trigger thresholds as logits
    m_retrig: np.ndarray      # (D,) retrigger time in samples
    # the autoencoder's encoder (rtdrums.dsp.encoder; empty without one)
    e_edges: np.ndarray       # (E + 1,) start bins of its bands
    e_w1: np.ndarray          # (E, U)
    e_b1: np.ndarray          # (U,)
    e_w2: np.ndarray          # (U, R0) R0: the preset's templates (free ones get 0)
    e_b2: np.ndarray          # (R0,)
    # the lean kernels (Params.lean): FFT tables (rtdrums.dsp.fft.lean_tables) and the ensemble's
    # first layers merged (rtdrums.dsp.onset_model.merged_first_layer)
    fft_lean: np.ndarray      # (4, N / 2)
    fft_lean32: np.ndarray    # (4, N / 2) float32, for the synthesis
    sfft_lean: np.ndarray     # (4, n_fft / 16)
    m_w1m: np.ndarray         # (F, K U) int16
    Wt32: np.ndarray          # (R, K) float32 copies for the lean masks and solve (adaptation updates them too)
    Wb32: np.ndarray          # (B, R)
    Wbt32: np.ndarray         # (R, B)
    m_b1m: np.ndarray         # (K U,) float32
    m_w1s: np.ndarray         # (F,) float32 scale of each row of m_w1m
    m_w1c: np.ndarray         # (F,) float32 centre of each feature


class Params(NamedTuple):
    hop: int
    synthesis: int
    method: int
    n_iter: int
    tol: float
    pg_step: float
    mask_exp: float
    warm_decay: float
    h_floor: float
    env_decay: float
    gamma: float
    jump: float
    onset_offset: int
    learned: bool             # triggers from the onset model instead of the threshold detector
    beside: bool              # ... and from the threshold detector too, for the drums marked in Tables.both
    mag_norm: float           # magnitudes times this: a full-scale sine's peak is 0.5
    adapt: bool               # templates adapt (rtdrums.dsp.adapt), with:
    a_rate: float
    a_lower: float
    a_upper: float
    a_confidence: float
    a_interval: int
    a_free_start: int         # first free residual component
    encoder: bool             # each frame's solve starts from the encoder's h (rtdrums.dsp.encoder)
    lean: bool = True         # the lean kernels (docs/lean-engine.md); False: the reference kernels


def map_templates(W: np.ndarray, source: StftSettings, target: StftSettings) -> np.ndarray:
    """Templates on another bin grid: linear interpolation over frequency, unit L1 columns.

    Bins above the source's Nyquist frequency get zero (they fall to the residual).
    """
    if (source.sample_rate, source.n_fft) == (target.sample_rate, target.n_fft):
        return np.array(W, np.float64)
    f_src, f_dst = source.bin_freqs, target.bin_freqs
    out = np.stack([np.interp(f_dst, f_src, W[:, r], right=0.0) for r in range(W.shape[1])], axis=1)
    return out / np.maximum(out.sum(axis=0, keepdims=True), 1e-12)


def lookback_frames(p: Preset, s: StftSettings) -> np.ndarray:
    """Frames each drum's rise is measured over; the residual uses the longest."""
    frames = [max(1, round(d.lookback_ms / 1000 * s.sample_rate / s.hop)) for d in p.drums]
    return np.array(frames + [max(frames)], np.int64)


def trigger_settings(p: Preset, s: StftSettings) -> dict[str, np.ndarray]:
    """The detector's per-drum settings as the engine's tables hold them (frames, samples)."""
    return dict(
        floor=np.array([d.floor * d.reference for d in p.drums], np.float64),
        sens=np.array([d.sensitivity for d in p.drums], np.float64),
        retrig=np.array([round(d.retrigger_ms * s.sample_rate / 1000) for d in p.drums], np.int64),
        rel=np.array([d.relative for d in p.drums], np.float64),
        lookback=lookback_frames(p, s),
        crosstalk=np.array([d.crosstalk for d in p.drums], np.float64),
        scan=scan_frames(p, s),
        both=np.array([d.detector == "both" and p.onset_model is not None for d in p.drums], np.int64))


def scan_frames(p: Preset, s: StftSettings) -> np.ndarray:
    """Frames from each drum's trigger decision to its note-on: its scan_ms, else [trigger] scan_ms;
    with a learned trigger at most the longest scan it has a velocity read-out for."""
    ms = np.array([p.trigger.scan_ms if d.scan_ms is None else d.scan_ms for d in p.drums])
    frames = np.round(ms / 1000 * s.sample_rate / s.hop).astype(np.int64)
    return np.minimum(frames, onset_model.SCANS - 1) if p.onset_model is not None else frames


def learned_trigger_tables(p: Preset, s: StftSettings) -> dict[str, np.ndarray]:
    """The onset model's tables at the engine's rate; empty ones when the preset has none."""
    m, D = p.onset_model, len(p.drums)
    if m is None:
        return dict(m_edges=np.zeros(1, np.int64), m_sedges=np.zeros(1, np.int64),
                    m_w1=np.zeros((1, 0, 0)), m_b1=np.zeros((1, 0)), m_w2=np.zeros((1, 0, D)), m_b2=np.zeros((1, D)),
                    m_vel_w=np.zeros((1, 0, D)), m_vel_b=np.zeros((1, D)), m_vel_map=np.zeros((1, 0, 2, 2)),
                    m_vel_h=np.zeros((1, 0, D)), m_logit=np.zeros(D), m_retrig=np.zeros(D, np.int64))
    return dict(m_edges=onset_model.band_bins(m.band_hz, s.sample_rate, s.n_fft),
                m_sedges=onset_model.short_bins(m.short_hz, s.sample_rate, s.n_fft),
                **onset_model.folded_networks(m, np.array([d.sensitivity for d in p.drums]), scan_frames(p, s),
                                     articulations(p)["group_art"]),
                m_retrig=np.full(D, round(m.retrigger_ms * s.sample_rate / 1000), np.int64))


def detector_state(t: Tables) -> tuple[np.ndarray, ...]:
    """A fresh trigger-detector state for tables t: fstate, istate, history, dropped."""
    return onsets.new_state(len(t.group_start) - 1, len(t.art_start) - 1, int(t.lookback.max()))


def band_edges(settings: StftSettings, n_bands: int, f_min: float = 30.0) -> np.ndarray:
    """Start bins of about n_bands log-spaced bands from f_min to Nyquist (each >= one bin)."""
    K = settings.n_bins
    if n_bands <= 0 or n_bands >= K:
        return np.arange(K + 1)
    df = settings.sample_rate / settings.n_fft
    edges_hz = np.geomspace(f_min, settings.sample_rate / 2, n_bands + 1)
    edges = np.unique(np.clip(np.round(edges_hz / df).astype(np.int64), 1, K))
    return np.concatenate([[0], edges[edges < K], [K]]).astype(np.int64)


def build_tables(p: Preset, s: StftSettings) -> tuple[Tables, float]:
    """The tables, and the projected-gradient step of the banded templates."""
    W = map_templates(p.W, p.stft, s)
    edges = band_edges(s, p.solver.bands)
    Wb = np.add.reduceat(W, edges[:-1], axis=0)
    solver = nmf.SolverTables(Wb)
    plan = fft.make_plan(s.n_fft)
    n_short = onset_model.short_length(s.n_fft)
    splan = fft.make_plan(n_short)
    short = replace(s, n_fft=n_short, taper=max(1, n_short // onset_model.SHORT_TAPER_DIVISOR))
    arts = articulations(p)
    reference = np.array([d.reference for d in p.drums] + [p.residual_reference])
    return Tables(
        wa=analysis_window(s), ws=synthesis_window(s), W=np.ascontiguousarray(W),
        Wt=np.ascontiguousarray(W.T),
        Wb=solver.W, Wbt=solver.Wt, WtW=solver.WtW, Wt1=solver.Wt1, W0=W.copy(),
        a_level=p.adapt.level * reference, band_edges=edges,
        **arts,
        notes=np.array([n for d in p.drums for n in d.notes] + [0] * p.residual_components, np.int64),
        reference=reference,
        leak=np.array([d.leak for d in p.drums] + [p.residual_leak], np.float64).T.copy(),
        **trigger_settings(p, s),
        fft_bitrev=plan.bitrev, fft_twiddle=plan.twiddle, fft_split=plan.split,
        swin=analysis_window(short), sfft_bitrev=splan.bitrev, sfft_twiddle=splan.twiddle,
        sfft_split=splan.split,
        **(lt := learned_trigger_tables(p, s)), **encoder_tables(p, s),
        fft_lean=fft.lean_tables(s.n_fft), fft_lean32=fft.lean_tables(s.n_fft).astype(np.float32), Wt32=np.ascontiguousarray(W.T, np.float32),
        Wb32=np.ascontiguousarray(solver.W, np.float32), Wbt32=np.ascontiguousarray(solver.Wt, np.float32), sfft_lean=fft.lean_tables(n_short),
        **dict(zip(("m_w1m", "m_w1s", "m_w1c", "m_b1m"),
                   onset_model.merged_first_layer(lt["m_w1"], lt["m_b1"], feature_centre(p))))), solver.pg_step


def feature_centre(p: Preset) -> np.ndarray | None:
    """The onset model's features' mean level over its networks (merged_first_layer's centre)."""
    if p.onset_model is None:
        return None
    return np.mean([n.mean for n in p.onset_model.networks], axis=0)


def encoder_tables(p: Preset, s: StftSettings) -> dict[str, np.ndarray]:
    """The encoder's tables at the engine's rate; a one-line error if the solver needs one the
    preset lacks."""
    if p.solver.uses_encoder and p.autoencoder is None:
        from .errors import UserError
        raise UserError(f"preset {p.name} has no autoencoder for solver method {p.solver.method!r}, "
                        f"start {p.solver.start!r}: train one with `rtdrums train --autoencoder`")
    return encoder.encoder_tables(p.autoencoder, s.sample_rate, s.n_fft)

def build_params(p: Preset, s: StftSettings, pg_step: float) -> Params:
    frame_s = s.hop / s.sample_rate
    t = p.trigger
    return Params(
        hop=s.hop, synthesis=s.synthesis, method=nmf.METHODS.get(p.solver.method, nmf.METHOD_KL),
        n_iter=p.solver.iterations, tol=p.solver.tolerance,
        pg_step=pg_step,
        mask_exp=p.mask_exponent, warm_decay=p.solver.warm_decay, h_floor=p.solver.floor,
        env_decay=0.5 ** (frame_s * 1000 / t.envelope_half_life_ms), gamma=t.velocity_gamma,
        jump=t.jump,
        onset_offset=s.hop // 2 + s.taper // 2,
        learned=p.onset_model is not None,
        beside=p.onset_model is not None and any(d.detector == "both" for d in p.drums), mag_norm=1.0 / float(analysis_window(s).sum()),
        adapt=p.adapt.enabled, a_rate=p.adapt.rate, a_lower=p.adapt.lower, a_upper=p.adapt.upper,
        a_confidence=p.adapt.confidence, a_interval=p.adapt.interval,
        a_free_start=p.W.shape[1] - (p.adapt.free_components if p.adapt.enabled else 0),
        encoder=p.solver.uses_encoder)
