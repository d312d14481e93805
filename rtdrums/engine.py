"""The streaming engine: audio block in, stems and trigger events out.

    engine = Engine(load_preset("default"), sample_rate=48000)
    stems, events = engine.process(block)        # block: float32 (n,), any n <= max_block

Every block is one call into compiled code (`process_block`), which runs the streaming STFT,
solves each new frame for h >= 0 with W fixed (warm-started from the previous frame), masks the
frame into the stems, overlap-adds them and runs the trigger detector. All state lives in arrays
allocated here, once; the preset's tables come from rtdrums.tables. Offline processing is a loop over blocks of this same engine, so a file gives
exactly what a live run gives. The engine knows nothing of devices.
"""

from __future__ import annotations

from dataclasses import replace
import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .bundle import bundle
from .dsp import adapt, encoder, fft, nmf, onset_model, onsets, ticks
from .dsp.stft import StftSettings
from .errors import UserError
from .events import EVENT_DTYPE
from .preset import Preset
from .tables import Tables, build_params, build_tables, detector_state, map_templates

INPUT_LIMIT = 16.0        # samples beyond +-16 full scale are clipped: garbage, not audio
DENORMAL = 1e-30


class State(NamedTuple):
    """Everything that changes while streaming; reset() zeroes it."""
    counters: np.ndarray      # int64: see C_* below
    ring: np.ndarray          # (N,) newest input samples
    frame: np.ndarray         # (N,) windowed frame
    spec: np.ndarray          # (K,) complex spectrum of the frame
    masked: np.ndarray        # (K,) complex scratch
    y: np.ndarray             # (N,) scratch for inverse FFTs
    fft_work: np.ndarray
    mag: np.ndarray           # (K,)
    vb: np.ndarray            # (B,) banded magnitudes
    h: np.ndarray             # (R,) activations of the current frame
    wh: np.ndarray            # (B,) solver scratch
    wtv: np.ndarray           # (R,)
    num: np.ndarray           # (R,)
    model: np.ndarray         # (G, K) per-group model spectra, then masks
    act: np.ndarray           # (D + 1,) drum activations, then the residual's
    ola: np.ndarray           # (D + 1, L) overlap-add accumulators
    outq: np.ndarray          # (D + 1, hop) finished output samples
    fstate: np.ndarray        # (D + 1, N_FSTATE) detector state, see detector_state
    istate: np.ndarray        # (D, N_ISTATE)
    tstate: np.ndarray        # (D, N_ISTATE) the threshold detector's, when it runs beside the learned trigger
    history: np.ndarray       # (A, lookback) recent articulation activations for the trigger detector
    dropped: np.ndarray       # (1,) events that did not fit the output array
    zring: np.ndarray         # (LAGS + 1, Z) the onset model's recent log levels
    feat: np.ndarray          # (F,) its features of the current frame
    hidden: np.ndarray        # (K U,) its networks' hidden layers
    m_out: np.ndarray         # (D + A,) its outputs (the mean of its networks' when it has several)
    sframe: np.ndarray        # (n_fft / 8,) the short window's frame
    sspec: np.ndarray         # its complex spectrum
    smag: np.ndarray          # its magnitudes
    sfft_work: np.ndarray
    a_lam: np.ndarray         # (K,) adaptation scratch
    a_lamg: np.ndarray        # (K,)
    a_col: np.ndarray         # (K,)
    a_changed: np.ndarray     # (R,) int64
    a_count: np.ndarray       # (2,) int64: frames since the last adaptation, columns updated
    e_z: np.ndarray           # (E,) the encoder's inputs
    e_hidden: np.ndarray      # (U,) its hidden layer
    lwork: np.ndarray         # (2, N / 2) the lean FFT's scratch
    lwork32: np.ndarray       # (2, N / 2) float32: the synthesis's
    slwork: np.ndarray        # (2, n_fft / 16) the short window's
    model32: np.ndarray       # (G, K) float32 model spectra (lean masks)
    wh32: np.ndarray          # (B,) float32 scratch of the lean solve
    vb32: np.ndarray          # (B,)
    num32: np.ndarray         # (R,)
    h32: np.ndarray           # (R,)
    m_hidden: np.ndarray      # (K U,) float32 the onset model's hidden layers, merged (lean kernels)
    prof: np.ndarray          # (len(STAGES) + 1,) int64: ticks per stage while profiling; last slot 1 = on
    emit_block: np.ndarray    # (1,) int64: Engine.emit_block, a setting that reset() keeps


C_RING_POS, C_SAMPLES, C_HOP_FILL, C_OUT_POS, C_BAD, C_FRAMES, C_ITERS = range(7)
# the stages of a frame that Engine.profiling times (rtdrums bench's profile by stage)
STAGES = ("analysis FFT", "solve", "adaptation", "masks", "synthesis", "overlap-add", "trigger")
ST_FFT, ST_SOLVE, ST_ADAPT, ST_MASKS, ST_SYNTH, ST_OLA, ST_TRIGGER = range(len(STAGES))
PROF_ON = len(STAGES)


class Engine:
    """Streaming decomposition of one mono input into drum stems, a residual and triggers.

    stem_names: the drums, then 'residual'. stem_latency: samples by which every stem lags the
    input. Events (rtdrums.events.EVENT_DTYPE) carry stream sample indices; `emitted` is the end of
    the block in which the trigger was decided (the call's, or with emit_block the nominal block's:
    see the property). lean=False runs the reference kernels the lean ones are checked and timed
    against (docs/lean-engine.md). share: an engine of the same preset
    and rate whose read-only tables (all but the templates adaptation moves) this one uses too, so
    that many channels keep one copy of them in the caches (rtdrums.channels).
    """

    def __init__(self, preset: Preset, sample_rate: int | None = None, max_block: int = 8192,
                 max_events: int = 256, lean: bool = True, share: "Engine | None" = None,
                 emit_block: int = 0):
        sample_rate = int(sample_rate or preset.stft.sample_rate)
        lo, hi = preset.stft.rate_range()
        if not lo <= sample_rate <= hi:
            raise UserError(f"preset {preset.name} (trained at {preset.stft.sample_rate} Hz) runs at "
                            f"{lo} to {hi} Hz, not {sample_rate} Hz: use a rate in that range, or "
                            f"train a preset at this rate (rtdrums train --sample-rate {sample_rate})")
        self.preset = preset
        run_preset = adapt.with_free_components(preset)
        self.settings = s = preset.stft.scaled_to(sample_rate)
        try:
            s.validate()
        except ValueError as e:
            raise UserError(f"cannot run preset {preset.name} at {sample_rate} Hz: {e}") from None
        self.sample_rate = sample_rate
        self.max_block = int(max_block)
        self.drum_names = preset.drum_names
        self.stem_names = self.drum_names + ("residual",)
        self.stem_latency = s.stem_latency
        self.tables, pg_step = build_tables(run_preset, s)
        if share is not None:
            if share.preset is not preset or share.settings != s:
                raise ValueError("share: an engine of the same preset object at the same rate")
            own = ("W", "Wt", "Wb", "Wbt", "WtW", "Wt1", "W0", "Wt32", "Wb32", "Wbt32")
            self.tables = share.tables._replace(**{k: getattr(self.tables, k) for k in own})
        self.params = build_params(run_preset, s, pg_step)._replace(lean=bool(lean))
        self.state = self._alloc_state(s, len(self.drum_names), self.tables)
        self._bundle = bundle(self.tables, self.params, self.state)
        self._reference = None                  # analyse()'s bundle, built on its first call
        self._stems = np.zeros((self.max_block, len(self.stem_names)), np.float32)
        self._events = np.zeros(max_events, EVENT_DTYPE)
        self._profiling = 0
        self._emit_block = 0
        t = self.tables
        self._trained = [(a, a.copy()) for a in (t.W, t.Wt, t.Wb, t.Wbt, t.WtW, t.Wt1, t.Wt32, t.Wb32, t.Wbt32)]
        self.reset()
        self.emit_block = emit_block

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def _alloc_state(s: StftSettings, D: int, t: Tables) -> State:
        N, K, B, R = s.n_fft, s.n_bins, t.Wb.shape[0], t.W.shape[1]
        fstate, istate, history, dropped = detector_state(t)
        return State(
            counters=np.zeros(7, np.int64), ring=np.zeros(N), frame=np.zeros(N),
            spec=np.zeros(K, np.complex128), masked=np.zeros(K, np.complex128), y=np.zeros(N),
            fft_work=np.zeros(N // 2, np.complex128), mag=np.zeros(K), vb=np.zeros(B),
            h=np.zeros(R), wh=np.zeros(B), wtv=np.zeros(R), num=np.zeros(R),
            model=np.zeros((D + 1, K)), act=np.zeros(D + 1), ola=np.zeros((D + 1, s.synthesis)),
            outq=np.zeros((D + 1, s.hop)), fstate=fstate, istate=istate, tstate=istate.copy(), history=history,
            dropped=dropped, zring=np.zeros((onset_model.LAGS + 1, t.m_w1.shape[1] // (onset_model.LAGS + 1))),
            feat=np.zeros(t.m_w1.shape[1]), hidden=np.zeros(t.m_b1.size), m_out=np.zeros(t.m_b2.shape[1]),
            sframe=np.zeros(len(t.swin)), sspec=np.zeros(len(t.swin) // 2 + 1, np.complex128),
            smag=np.zeros(len(t.swin) // 2 + 1), sfft_work=np.zeros(len(t.swin) // 2, np.complex128),
            a_lam=np.zeros(K), a_lamg=np.zeros(K), a_col=np.zeros(K), a_changed=np.zeros(R, np.int64),
            a_count=np.zeros(2, np.int64), e_z=np.zeros(len(t.e_edges) - 1), e_hidden=np.zeros(len(t.e_b1)),
            lwork=np.zeros((2, N // 2)), lwork32=np.zeros((2, N // 2), np.float32),
            slwork=np.zeros((2, len(t.swin) // 2)), m_hidden=np.zeros(len(t.m_b1m), np.float32),
            model32=np.zeros((D + 1, K), np.float32), wh32=np.zeros(B, np.float32), vb32=np.zeros(B, np.float32),
            num32=np.zeros(R, np.float32), h32=np.zeros(R, np.float32),
            prof=np.zeros(len(STAGES) + 1, np.int64), emit_block=np.zeros(1, np.int64))

    # -- streaming ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all history, adapted templates included: the next sample is stream sample 0."""
        S = self.state
        for a in S:
            a[...] = 0
        for live, trained in self._trained:
            live[...] = trained
        onsets.reset_state(S.fstate, S.istate, S.history, S.dropped)
        S.tstate[:, onsets.SI_LAST] = onsets.NEVER
        S.prof[PROF_ON] = self._profiling
        S.emit_block[0] = self._emit_block

    @property
    def profiling(self) -> bool:
        """While True, each frame adds the ticks (rtdrums.dsp.ticks) of its stages (STAGES) into
        stage_ticks; reset() keeps the setting."""
        return bool(self._profiling)

    @profiling.setter
    def profiling(self, on: bool) -> None:
        self._profiling = int(bool(on))
        self.state.prof[PROF_ON] = self._profiling

    @property
    def emit_block(self) -> int:
        """0: an event's `emitted` is the end of the call that decided it (a live callback's
        block). n > 0: a call stands for consecutive calls of n samples from its first sample (the
        last one shorter) and `emitted` is the end of the one that decided the event, so that one
        call over many blocks (rtdrums.offline) reports what calls of n samples report. reset()
        keeps the setting."""
        return self._emit_block

    @emit_block.setter
    def emit_block(self, n: int) -> None:
        if int(n) < 0:
            raise ValueError(f"emit_block {n}: give a block size in samples, or 0")
        self._emit_block = int(n)
        self.state.emit_block[0] = self._emit_block

    @property
    def stage_ticks(self) -> np.ndarray:
        """Ticks per stage (STAGES) since the last clear_stage_ticks() (a view)."""
        return self.state.prof[:PROF_ON]

    def clear_stage_ticks(self) -> None:
        self.state.prof[:PROF_ON] = 0

    def warm(self) -> None:
        """Run the compiled path once (compiling or loading it from cache), then reset."""
        block = np.zeros(min(self.max_block, 2 * self.settings.hop + 1), np.float32)
        self.process(block)
        self.reset()

    def process_into(self, block: np.ndarray, stems_out: np.ndarray, events_out: np.ndarray) -> int:
        """Process one block into preallocated outputs; returns the number of events written.

        block: float32 (n,); stems_out: float32 (>= n, n_stems); events_out: EVENT_DTYPE array.
        Allocation-free: this is the call for an audio callback.
        """
        if block.shape[0] > stems_out.shape[0]:      # compiled code does not check bounds
            raise ValueError(f"stems_out has {stems_out.shape[0]} rows for a block of {block.shape[0]}")
        return process_block(block, stems_out, events_out, self._bundle)

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Process one block; returns (stems (n, n_stems), events) as views valid until the next call."""
        n = len(block)
        if n > self.max_block:
            raise ValueError(f"block of {n} samples exceeds max_block {self.max_block}")
        k = process_block(block, self._stems, self._events, self._bundle)
        return self._stems[:n], self._events[:k]

    def analyse(self, x: np.ndarray, band_hz: np.ndarray | None = None,
                short_hz: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Activations (frames, R) of every whole hop of x from a fresh start, and with band_hz the
        onset model's features (frames, F) float32 on those bands and the short window's short_hz
        (else (frames, 0)); leaves the engine reset. What process() of the reference kernels
        (lean=False) computes for those frames, without masks, synthesis or triggers: for training
        and tuning, which stay in float64 so that a preset does not depend on the kernels that
        play it (the lean kernels' float32 rounding moves no trigger: docs/lean-engine.md)."""
        s = self.settings
        x = np.ascontiguousarray(x, np.float32)
        frames = len(x) // s.hop
        h = np.zeros((frames, self.tables.W.shape[1]))
        sedges = onset_model.short_bins(np.zeros(0) if short_hz is None else short_hz, s.sample_rate, s.n_fft)
        if band_hz is None:
            edges, zring, feats = np.zeros(1, np.int64), np.zeros((1, 0)), np.zeros((frames, 0), np.float32)
        else:
            edges = onset_model.band_bins(band_hz, s.sample_rate, s.n_fft)
            F = onset_model.feature_count(len(edges) - 1, h.shape[1], len(sedges) - 1)
            zring = np.zeros((onset_model.LAGS + 1, F // (onset_model.LAGS + 1)))
            feats = np.zeros((frames, F), np.float32)
        self.reset()
        if self._reference is None:            # the reference kernels on this engine's tables and state
            self._reference = bundle(self.tables, self.params._replace(lean=False), self.state)
        analyse_hops(x, self._reference, edges, sedges, self.params.mag_norm, zring, h, feats)
        self.reset()
        return h, feats

    @property
    def adapted_updates(self) -> int:
        """Template columns changed by adaptation since the last reset."""
        return int(self.state.a_count[1])

    def adapted_preset(self, note: str = "") -> Preset:
        """The preset with its templates as adaptation has left them (free residual components
        are not kept), mapped back to the preset's bin grid; note goes into its provenance."""
        R0 = self.preset.W.shape[1]
        W = map_templates(self.tables.W[:, :R0], self.settings, self.preset.stft)
        prov = dict(self.preset.provenance)
        prov["adapted"] = {"from": self.preset.name, "updates": self.adapted_updates,
                           "samples": self.samples_processed, "note": note}
        return replace(self.preset, W=W, provenance=prov)

    @property
    def samples_processed(self) -> int:
        return int(self.state.counters[C_SAMPLES])

    @property
    def bad_samples(self) -> int:
        """NaN or infinite input samples replaced by silence so far."""
        return int(self.state.counters[C_BAD])

    @property
    def frames_processed(self) -> int:
        return int(self.state.counters[C_FRAMES])

    @property
    def mean_iterations(self) -> float:
        f = self.frames_processed
        return float(self.state.counters[C_ITERS]) / f if f else 0.0

    @property
    def events_dropped(self) -> int:
        return int(self.state.dropped[0])

    @property
    def activations(self) -> np.ndarray:
        """Activations of the latest frame per drum, then the residual's (a view)."""
        return self.state.act


@njit(cache=True, nogil=True)
def process_block(x, stems, events, handle):
    """Stream the samples of x through the engine; see Engine.process_into."""
    T, P, S = handle.tables, handle.params, handle.state
    c = S.counters
    n_stems = S.outq.shape[0]
    n_events = 0
    start = c[C_SAMPLES]
    for i in range(x.shape[0]):
        if _push(S, x[i], P.hop):
            n_events = _frame(T, P, S, events, n_events)
            c[C_OUT_POS] = 0
        j = c[C_OUT_POS]
        for s in range(n_stems):
            stems[i, s] = S.outq[s, j]
        c[C_OUT_POS] = j + 1 if j + 1 < P.hop else j
    nominal = S.emit_block[0]
    for e in range(n_events):                  # the detectors leave the frame's end in emitted
        decided = events[e]["emitted"] - 1
        events[e]["decided"] = decided
        end = c[C_SAMPLES]
        if nominal > 0:                        # the end of the nominal block that holds decided
            end = min(end, start + ((decided - start) // nominal + 1) * nominal)
        events[e]["emitted"] = end
    return n_events


@njit(cache=True, nogil=True)
def _push(S, sample, hop):
    """Append one input sample to the ring (NaN/Inf -> 0, clipped, denormals flushed); True when a
    hop is complete and a frame is due."""
    c = S.counters
    v = float(sample)
    if not np.isfinite(v):
        v = 0.0
        c[C_BAD] += 1
    elif v > INPUT_LIMIT:
        v = INPUT_LIMIT
    elif v < -INPUT_LIMIT:
        v = -INPUT_LIMIT
    elif abs(v) < DENORMAL:
        v = 0.0
    S.ring[c[C_RING_POS]] = v
    c[C_RING_POS] = (c[C_RING_POS] + 1) % S.ring.shape[0]
    c[C_SAMPLES] += 1
    c[C_HOP_FILL] += 1
    if c[C_HOP_FILL] < hop:
        return False
    c[C_HOP_FILL] = 0
    return True


@njit(cache=True, nogil=True)
def _analyse(T, P, S):
    """The newest frame's spectrum (S.spec, S.mag) and its activations S.h, solved with W fixed
    from the previous frame's."""
    K = S.spec.shape[0]
    R = S.h.shape[0]
    c = S.counters
    c[C_FRAMES] += 1
    t = _mark(S)
    _spectrum(S.ring, c[C_RING_POS], T.wa, S.frame, S.spec, S.mag, P.lean, T.fft_bitrev, T.fft_lean, S.lwork,
              T.fft_twiddle, T.fft_split, S.fft_work)
    t = _lap(S, ST_FFT, t)
    if P.encoder:
        c[C_ITERS] += encoder.solve_encoded(T.Wb, T.Wbt, T.WtW, T.Wt1, P.pg_step, T.band_edges, S.mag, S.vb,
                                            S.h, P.method, P.n_iter, P.tol, P.h_floor, S.wh, S.wtv, S.num,
                                            T.e_edges, T.e_w1, T.e_b1, T.e_w2, T.e_b2, S.e_z, S.e_hidden)
    elif P.lean and P.method == nmf.METHOD_KL:
        level = nmf.band_sums(S.mag, T.band_edges, S.vb)
        _warm_start(S.h, P.warm_decay, P.h_floor * level / R + 1e-20)
        c[C_ITERS] += nmf.solve_kl32(T.Wb32, T.Wbt32, T.Wt1, S.vb, S.h, P.n_iter, P.tol, S.wh32, S.num32, S.h32, S.vb32)
    else:
        c[C_ITERS] += nmf.solve_banded(T.Wb, T.Wbt, T.WtW, T.Wt1, P.pg_step, T.band_edges, S.mag, S.vb, S.h,
                                       P.method, P.n_iter, P.tol, P.warm_decay, P.h_floor,
                                       S.wh, S.wtv, S.num)
    for r in range(R):
        if not np.isfinite(S.h[r]):
            S.h[r] = 0.0
    t = _lap(S, ST_SOLVE, t)
    if P.adapt:
        S.a_count[0] += 1
        if S.a_count[0] >= P.a_interval:
            n = adapt.adapt_frame(T.W, T.Wt, T.Wb, T.Wbt, T.WtW, T.Wt1, T.W0, T.band_edges, T.group_start,
                                  P.a_free_start, T.a_level, S.h, S.mag, P.a_rate, P.a_lower, P.a_upper,
                                  P.a_confidence, S.a_lam, S.a_lamg, S.a_col, S.a_changed)
            if n > 0:
                S.a_count[0] = 0
                S.a_count[1] += n
                for i in range(n):            # the lean kernels' float32 copies of the changed columns
                    r = S.a_changed[i]
                    for k in range(K):
                        T.Wt32[r, k] = T.Wt[r, k]
                    for b in range(T.Wb.shape[0]):
                        T.Wb32[b, r] = T.Wb[b, r]
                        T.Wbt32[r, b] = T.Wbt[r, b]
        _lap(S, ST_ADAPT, t)


@njit(cache=True, nogil=True)
def _unroll_ring(ring, start, win, frame):
    """frame[k] = ring[(start + k) % N] * win[k] for the last len(win) samples of the ring from
    start, in two straight runs (no modulo per sample)."""
    N = ring.shape[0]
    n = win.shape[0]
    first = start % N
    run = min(n, N - first)
    for k in range(run):
        frame[k] = ring[first + k] * win[k]
    for k in range(run, n):
        frame[k] = ring[k - run] * win[k]


@njit(cache=True, nogil=True)
def _warm_start(h, decay, floor):
    """The previous frame's h decayed and floored, as nmf.solve_banded starts a frame."""
    for r in range(h.shape[0]):
        x = h[r] * decay
        h[r] = x if x > floor else floor


@njit(cache=True, nogil=True)
def _masks(T, P, S):
    """The drums' soft masks into S.model[:D]: model spectrum of each group (drums, then
    residual) to the mask exponent, over their sum (the reference kernel)."""
    G, K = S.model.shape
    D = G - 1
    for g in range(G):
        for k in range(K):
            S.model[g, k] = 0.0
        for r in range(T.group_start[g], T.group_start[g + 1]):
            x = S.h[r]
            for k in range(K):                 # rows of Wt are contiguous: this vectorises
                S.model[g, k] += T.Wt[r, k] * x
        if P.mask_exp == 2.0:
            for k in range(K):
                S.model[g, k] *= S.model[g, k]
        elif P.mask_exp != 1.0:
            for k in range(K):
                S.model[g, k] = S.model[g, k] ** P.mask_exp
    for k in range(K):
        den = 0.0
        for g in range(G):
            den += S.model[g, k]
        inv = 1.0 / den if den > 1e-30 else 0.0
        for g in range(D):
            S.model[g, k] *= inv


@njit(cache=True, nogil=True)
def _lean_masks(T, P, S):
    """The drums' soft masks into S.model[:D], as _masks computes them, with the
    model spectra W_g h_g summed in float32 (T.Wt32: half the memory traffic, twice the lanes)
    and the exponent and the normalisation in float64."""
    G, K = S.model32.shape
    D = G - 1
    for g in range(G):
        row = S.model32[g]
        row[:] = 0.0
        for r in range(T.group_start[g], T.group_start[g + 1]):
            x = np.float32(S.h[r])
            w = T.Wt32[r]
            for k in range(K):
                row[k] += w[k] * x
    for k in range(K):
        den = 0.0
        for g in range(G):
            v = float(S.model32[g, k])
            if P.mask_exp == 2.0:
                v *= v
            elif P.mask_exp != 1.0:
                v = v ** P.mask_exp
            if g < D:
                S.model[g, k] = v
            den += v
        inv = 1.0 / den if den > 1e-30 else 0.0
        for g in range(D):
            S.model[g, k] *= inv


@njit(cache=True, nogil=True)
def _mark(S):
    """The tick counter while profiling, else 0."""
    return ticks.now() if S.prof[PROF_ON] else 0


@njit(cache=True, nogil=True)
def _lap(S, stage, t0):
    """While profiling, add the ticks since the mark t0 to stage; the new mark."""
    if not S.prof[PROF_ON]:
        return 0
    t = ticks.now()
    S.prof[stage] += t - t0
    return t


@njit(cache=True, nogil=True)
def _short_spectrum(T, P, S):
    """Magnitudes S.smag of the short window over the newest samples of the ring."""
    first = S.counters[C_RING_POS] + S.ring.shape[0] - T.swin.shape[0]   # the position after the newest sample is the oldest
    _spectrum(S.ring, first, T.swin, S.sframe, S.sspec, S.smag, P.lean, T.sfft_bitrev, T.sfft_lean, S.slwork,
              T.sfft_twiddle, T.sfft_split, S.sfft_work)


@njit(cache=True, nogil=True)
def _spectrum(ring, start, win, frame, spec, mag, lean, bitrev, lean_tables, lwork, twiddle, split, work):
    """The len(win) ring samples from position start, windowed into frame; their real FFT into spec
    and its magnitudes into mag, with the lean kernels (lean_tables, lwork) or the reference ones
    (twiddle, split, work)."""
    if lean:
        _unroll_ring(ring, start, win, frame)
        fft.rfft_lean(frame, spec, bitrev, lean_tables, lwork)
        for k in range(mag.shape[0]):          # without hypot's care for overflow: |x| <= 16 here
            z = spec[k]
            mag[k] = math.sqrt(z.real * z.real + z.imag * z.imag)
    else:
        N = ring.shape[0]
        for k in range(win.shape[0]):
            frame[k] = ring[(start + k) % N] * win[k]
        fft.rfft_into(frame, spec, bitrev, twiddle, split, work)
        for k in range(mag.shape[0]):
            mag[k] = abs(spec[k])


@njit(cache=True, nogil=True)
def analyse_hops(x, handle, edges, sedges, norm, zring, h_out, feat_out):
    """The analysis half of the engine (no masks, synthesis or triggers) over every whole hop of x:
    each frame's activations into h_out (frames, R) and, when feat_out has columns, the onset
    model's features on the bands `edges` into feat_out (frames, F). Exactly what process_block
    computes for those frames, at a fraction of its cost; for training and tuning."""
    T, P, S = handle.tables, handle.params, handle.state
    m = 0
    for i in range(h_out.shape[0] * P.hop):
        if _push(S, x[i], P.hop):
            _analyse(T, P, S)
            for r in range(S.h.shape[0]):
                h_out[m, r] = S.h[r]
            if feat_out.shape[1] > 0:
                if sedges.shape[0] > 1:
                    _short_spectrum(T, P, S)
                onset_model.frame_features(S.mag, S.h, edges, norm, zring, m, feat_out[m], S.smag, sedges)
            m += 1


@njit(cache=True, nogil=True)
def _frame(T, P, S, events, n_events):
    N = S.ring.shape[0]
    K = S.spec.shape[0]
    D = S.istate.shape[0]
    L = P.synthesis
    H = P.hop
    c = S.counters
    _analyse(T, P, S)
    t = _mark(S)

    G = D + 1
    if P.lean:
        _lean_masks(T, P, S)
    else:
        _masks(T, P, S)
    t = _lap(S, ST_MASKS, t)

    # synthesis: each drum's masked frame; the residual is the frame minus the drums
    off = N - L
    for g in range(D):
        if P.lean:
            fft.irfft_masked_lean(S.spec, S.model[g], S.y, off, T.fft_bitrev, T.fft_lean32, S.lwork32)
        else:
            for k in range(K):
                S.masked[k] = S.spec[k] * S.model[g, k]
            fft.irfft_into(S.masked, S.y, T.fft_bitrev, T.fft_twiddle, T.fft_split, S.fft_work)
        for n in range(L):
            v = S.y[off + n] * T.ws[off + n]
            S.ola[g, n] += v
            S.ola[D, n] -= v
    for n in range(L):
        S.ola[D, n] += S.frame[off + n] * T.ws[off + n]
    t = _lap(S, ST_SYNTH, t)
    for g in range(G):
        for n in range(H):
            S.outq[g, n] = S.ola[g, n]
        for n in range(L - H):
            S.ola[g, n] = S.ola[g, n + H]
        for n in range(L - H, L):
            S.ola[g, n] = 0.0
    t = _lap(S, ST_OLA, t)

    # triggers
    for g in range(G):
        acc = 0.0
        for r in range(T.group_start[g], T.group_start[g + 1]):
            acc += S.h[r]
        S.act[g] = acc
    if P.learned:
        if T.m_sedges.shape[0] > 1:
            _short_spectrum(T, P, S)
        onset_model.frame_features(S.mag, S.h, T.m_edges, P.mag_norm, S.zring, c[C_FRAMES] - 1, S.feat,
                                   S.smag, T.m_sedges)
        if P.lean:
            onset_model.ensemble_outputs_merged(S.feat, T.m_w1m, T.m_w1s, T.m_w1c, T.m_b1m, T.m_w2, T.m_b2, S.m_hidden, S.m_out)
            n_events = onset_model.decide(S.feat, S.m_hidden, S.m_out, T.art_start, T.group_art, T.notes, T.m_vel_w,
                                          T.m_vel_b, T.m_vel_map, T.m_vel_h, T.m_logit, T.m_retrig, T.scan, S.istate,
                                          c[C_SAMPLES], P.onset_offset, events, n_events, S.dropped)
        else:
            n_events = onset_model.detect(S.feat, T.art_start, T.group_art, T.notes, T.m_w1, T.m_b1, T.m_w2,
                                          T.m_b2, T.m_vel_w, T.m_vel_b, T.m_vel_map, T.m_vel_h, T.m_logit, T.m_retrig,
                                          T.scan, S.hidden, S.m_out, S.istate, c[C_SAMPLES], P.onset_offset, events,
                                          n_events, S.dropped)
        if P.beside:
            n_events = _beside(T, P, S, c[C_SAMPLES], events, n_events)
    else:
        n_events = detect_step(T, P, S.act, S.h, S.fstate, S.istate, S.history, S.dropped, c[C_SAMPLES],
                               events, n_events)
    _lap(S, ST_TRIGGER, t)
    return n_events


@njit(cache=True, nogil=True)
def _beside(T, P, S, frame_end, events, n_events):
    """The threshold detector beside the learned trigger (own state S.tstate): its note-ons of the
    drums marked in T.both are kept unless the drum triggered within its retrigger time, and then
    mask the learned trigger of that drum for its own; the others are dropped."""
    start = n_events
    n = detect_step(T, P, S.act, S.h, S.fstate, S.tstate, S.history, S.dropped, frame_end, events, n_events)
    for i in range(start, n):
        d = events[i]["drum"]
        if T.both[d] == 0 or frame_end - S.istate[d, onsets.SI_LAST] < T.retrig[d]:
            continue
        S.istate[d, onsets.SI_LAST] = frame_end
        if i != n_events:
            e, f = events[n_events], events[i]
            e["onset"], e["emitted"], e["drum"], e["note"], e["velocity"] = \
                f["onset"], f["emitted"], f["drum"], f["note"], f["velocity"]
        n_events += 1
    return n_events


@njit(cache=True, nogil=True)
def detect_step(T, P, act, h, fstate, istate, history, dropped, frame_end, events, n_events):
    """The trigger detector on one frame's activations, with the engine's tables and parameters."""
    return onsets.detect(act, h, T.group_start, T.art_start, T.group_art, T.notes, fstate, istate, history,
                         T.lookback, T.floor, T.rel, T.sens, T.retrig, T.reference, T.leak, P.gamma,
                         T.scan, P.env_decay, T.crosstalk, P.jump, frame_end, P.hop, P.onset_offset,
                         events, n_events, dropped)
