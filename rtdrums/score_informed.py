"""Score-informed NMF: separation and template learning from a recording whose drum notes are known.

The score (GM drum notes in a MIDI file) says when each drum plays. Each drum's activations H are
kept zero outside windows around its scored notes (from WINDOW_PRE_S before a note to the
note's ring time after it); the residual components stay free. Starting from a preset's templates
W, multiplicative KL updates of W (the drums' columns) and H under that constraint fit the
recording's magnitude spectrogram, so the templates adapt to the kit that was played (Ewert and
Sandler 2017; Ewert and Mueller 2012). Masks are the engine's Wiener-like ratios of the groups'
models W_g H_g to the mask exponent, applied to the engine's frames and overlap-added with its
synthesis window; the residual is the input minus the drums.

Before that the score is aligned: the offset (within the tolerance) at which the scored notes
best meet rises of their drums' activations, solved with the preset's templates fixed. A score
that fits nowhere near the tolerance, or best far outside it, is a UserError that says where.

The same factorisation serves `rtdrums separate --score` (stems and triggers that follow the
score, velocities measured from the audio) and `rtdrums train --groove --score` (the adapted
templates, see rtdrums.training.groove).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d

from .dsp.nmf import EPS
from .dsp.stft import StftSettings, frame_spectra, synthesis_window
from .errors import UserError
from .events import EVENT_DTYPE
from .preset import Preset, articulations
from .tables import map_templates
from .training.render import GROOVE_NOTES, load_groove

WINDOW_PRE_S = 0.020          # a drum may start this long before its (aligned) note
RING_S = {"kick": 0.35, "snare": 0.35, "hihat": 0.2, "hihat_open": 0.6, "residual": 1.5}  # and ring this long
ITERATIONS = 100              # multiplicative updates of W and H
SOLO_ITERATIONS = 50          # updates fitting each drum's templates to the frames where it plays alone
MIN_SOLO_FRAMES = 20          # fewer solo frames than this: the drum starts from the preset's templates
RESIDUAL_PENALTY = 3.0        # L1 weight on the residual's activations outside its notes' windows
ALIGN_ITERATIONS = 15         # updates of H (W fixed) for the alignment's activations
SEARCH_S = 2.0                # offsets tried beyond the tolerance, to say where a bad score fits
MATCH_LEVEL = 0.1             # a note meets an onset if its drum rises by this share of its loud rises
MIN_MATCH = 0.5               # share of notes that must meet an onset at the chosen offset
VELOCITY_S = 0.02             # a note's velocity: its drum's activation rise over this time
REFINE_S = 0.015              # each note moves to its drum's steepest rise within +-this of the aligned time,
REFINE_GAIN = 2.0             # if that rise is this many times the one at the note (+-1 frame)
# The take's own templates (note_templates): a drum's spectrum over these spans after its notes
# (onset, early and late decay; seconds), each the median over its clean notes (no other note from
# CLEAN_PRE_S before to the span's end) of the frames minus the quietest of the two before the note.
NOTE_STAGES_S = ((0.0, 0.005), (0.005, 0.016), (0.016, 0.043), (0.043, 0.107))
CLEAN_PRE_S = 0.005
MIN_CLEAN_NOTES = 3           # fewer clean notes for every span: the drum keeps the preset's templates


@dataclass(frozen=True)
class ScoreNote:
    time_s: float             # in the score (before the offset)
    drum: int                 # index into the preset's drums; len(drums): a tom or cymbal (residual)
    note: int                 # the score's MIDI note
    velocity: int
    open_hat: bool = False


@dataclass
class InformedResult:
    W: np.ndarray             # (K, R) templates after the updates, unit L1 columns, engine bins
    H: np.ndarray             # (R, N) activations, zero outside each drum's windows
    cols: list[np.ndarray]    # each group's columns of W (rows of H): the drums', then the residual's
    stems: np.ndarray         # (n, D + 1) float32, aligned to the input; residual last
    events: np.ndarray        # EVENT_DTYPE: one per scored drum note, at the aligned time
    names: tuple[str, ...]    # stem names
    offset_s: float           # the score's offset found (notes were moved by this)
    matched: float            # share of notes that met an onset at that offset
    settings: StftSettings
    notes: list[ScoreNote]


def read_score(path: str | Path, preset: Preset) -> list[ScoreNote]:
    """The drum notes of a MIDI file, mapped to the preset's drums: by the preset's own notes
    first, then by the GM / Roland TD-11 map of the shipped grooves; toms and cymbals go to the
    residual (index len(preset.drums)). A file without kick, snare or hi-hat notes is a UserError."""
    found = load_groove(path)
    names = list(preset.drum_names)
    own = {n: i for i, d in enumerate(preset.drums) for n in d.notes}
    out = []
    for t, note, vel in found:
        if note in own:
            drum = own[note]
        elif note in GROOVE_NOTES and GROOVE_NOTES[note].drum in names:
            drum = names.index(GROOVE_NOTES[note].drum)
        elif note in GROOVE_NOTES:
            drum = len(names)
        else:
            continue
        open_hat = note in GROOVE_NOTES and GROOVE_NOTES[note].articulation == "open"
        out.append(ScoreNote(t, drum, note, vel, open_hat))
    if not any(n.drum < len(names) for n in out):
        kinds = sorted({n for _, n, _ in found})
        raise UserError(f"{path}: no drum notes ({len(found)} notes, pitches {kinds[:8] or 'none'}): "
                        f"the score needs GM drum notes (kick 36, snare 38, hi-hat 42/44/46)")
    return out


def check_inside(notes: list[ScoreNote], duration_s: float, offset_s: float, tolerance_s: float,
                 path: str | Path) -> None:
    """A UserError if notes (moved by offset_s) fall outside the audio by more than the tolerance."""
    times = np.array([n.time_s for n in notes]) + offset_s
    out = (times < -tolerance_s) | (times > duration_s + tolerance_s)
    if out.any():
        raise UserError(f"{path}: {out.sum()} of {len(times)} drum notes lie outside the audio "
                        f"(0-{duration_s:.2f} s), from {times[out].min():.2f} to {times[out].max():.2f} s: "
                        f"use the score of this take, trim it, or fix --score-offset")


def _group_columns(preset: Preset) -> list[np.ndarray]:
    g = articulations(preset)["group_start"]
    return [np.arange(g[i], g[i + 1]) for i in range(len(g) - 1)]


def _kl_h(V, W, H, iterations):
    """H <- H * W^T (V / WH) / W^T 1, W fixed; zeros of H stay zero."""
    wt1 = W.sum(axis=0)[:, None] + EPS
    for _ in range(iterations):
        H *= (W.T @ (V / (W @ H + EPS))) / wt1
    return H


def drum_activations(V: np.ndarray, W: np.ndarray, cols: list[np.ndarray]) -> np.ndarray:
    """(D, N): each drum's summed activations of V with the templates W fixed (no score)."""
    H = _kl_h(V.astype(np.float32), W.astype(np.float32),
              np.full((W.shape[1], V.shape[1]), np.float32(V.sum(axis=0).mean() / W.shape[1])),
              ALIGN_ITERATIONS)
    return np.stack([H[c].sum(axis=0) for c in cols[:-1]])


def _rises(act: np.ndarray, frames: int) -> np.ndarray:
    """How far each row of act rises above its lowest of the `frames` frames before."""
    lows = np.minimum.accumulate(np.stack([np.roll(act, k, axis=1) for k in range(1, frames + 1)]), axis=0)[-1]
    lows[:, :frames] = act[:, :1]
    return np.maximum(act - lows, 0.0)


def note_frames(times_s: np.ndarray, s: StftSettings) -> np.ndarray:
    """The first frame in which a hit at each time weighs fully (taper samples past it)."""
    return np.floor((np.asarray(times_s) * s.sample_rate + s.taper) / s.hop).astype(np.int64)


def align(notes: list[ScoreNote], act: np.ndarray, s: StftSettings, offset_s: float,
          tolerance_s: float, path: str | Path = "score") -> tuple[float, float]:
    """(offset_s, share of notes matched): the offset within offset_s +- tolerance_s at which
    the notes best meet rises of their drums' activations act (D x N). UserError if it is
    clearly better outside, or fits nowhere."""
    notes = [n for n in notes if n.drum < act.shape[0]]
    N = act.shape[1]
    rise = _rises(act, 1)
    scale = np.array([np.percentile(r[r > 0], 99) if np.any(r > 0) else 1.0 for r in rise])
    nov = maximum_filter1d(rise / scale[:, None], size=5, axis=1)          # +-2 frames
    base = note_frames(np.array([n.time_s for n in notes]) + offset_s, s)
    drums = np.array([n.drum for n in notes])
    tol = int(round(tolerance_s * s.sample_rate / s.hop))
    wide = max(tol, int(round(SEARCH_S * s.sample_rate / s.hop)))
    shifts = np.arange(-wide, wide + 1)
    idx = base[None, :] + shifts[:, None]
    valid = (idx >= 0) & (idx < N)
    vals = np.where(valid, nov[drums[None, :], np.clip(idx, 0, N - 1)], 0.0)
    score = vals.mean(axis=1)
    matched = (vals >= MATCH_LEVEL).mean(axis=1)
    inside = np.abs(shifts) <= tol
    best_in = np.flatnonzero(inside)[np.argmax(score[inside])]
    best_all = int(np.argmax(score))
    ms = lambda k: shifts[k] * s.hop / s.sample_rate * 1000 + offset_s * 1000
    if not inside[best_all] and score[best_all] > 1.25 * score[best_in] and matched[best_all] >= MIN_MATCH:
        raise UserError(f"{path}: the score fits the audio best at an offset of {ms(best_all):+.0f} ms, "
                        f"beyond --score-tolerance {tolerance_s * 1000:.0f} ms: pass --score-offset "
                        f"{ms(best_all):.0f}")
    if matched[best_in] < MIN_MATCH:
        raise UserError(f"{path}: the score fits the audio nowhere: at best {matched[best_in]:.0%} of its "
                        f"notes meet an onset of their drum within {tolerance_s * 1000:.0f} ms of offset "
                        f"{offset_s * 1000:.0f} ms ({matched[best_all]:.0%} at {ms(best_all):+.0f} ms, "
                        f"{np.median(matched):.0%} by chance): is it this take's score?")
    return ms(best_in) / 1000, float(matched[best_in])


def refine_notes(notes: list[ScoreNote], act: np.ndarray, s: StftSettings, offset_s: float,
                 radius_s: float = REFINE_S) -> list[ScoreNote]:
    """The notes with each drum note moved to the frame where its drum's activation (act, D x N)
    rises most within +-radius_s of its aligned time (notes played early or late by a few ms;
    the global offset is found by align). A note stays where it is if its drum already rises
    there (within a frame) half as much as at the best frame, or does not rise by MATCH_LEVEL of
    its loud rises anywhere near; so do the residual's notes."""
    rise = _rises(act, 1)
    scale = np.array([np.percentile(r[r > 0], 99) if np.any(r > 0) else 1.0 for r in rise])
    rad = int(round(radius_s * s.sample_rate / s.hop))
    N = act.shape[1]
    out = []
    for n in notes:
        f = int(note_frames(n.time_s + offset_s, s))
        if n.drum < act.shape[0] and rad > 0 and 0 <= f < N:
            lo, hi = max(0, f - rad), min(N, f + rad + 1)
            best = lo + int(np.argmax(rise[n.drum, lo:hi]))
            here = rise[n.drum, max(0, f - 1):f + 2].max()
            if abs(best - f) > 1 and rise[n.drum, best] >= max(MATCH_LEVEL * scale[n.drum], REFINE_GAIN * here):
                n = replace(n, time_s=(best * s.hop - s.taper) / s.sample_rate - offset_s)
        out.append(n)
    return out


def window_mask(notes: list[ScoreNote], offset_s: float, preset: Preset, s: StftSettings,
                n_frames: int, cols: list[np.ndarray] | None = None) -> np.ndarray:
    """(R, N) True where a component may be active: a group's components (cols, default the
    preset's) around its notes (the residual's around toms and cymbals; elsewhere it is only
    penalised, see factorise)."""
    cols = _group_columns(preset) if cols is None else cols
    names = list(preset.drum_names) + ["residual"]
    M = np.zeros((cols[-1][-1] + 1, n_frames), bool)
    pre = int(np.ceil(WINDOW_PRE_S * s.sample_rate / s.hop))
    for n in notes:
        name = names[n.drum]
        ring = RING_S["hihat_open"] if n.open_hat else RING_S.get(name, 0.35)
        f = note_frames(n.time_s + offset_s, s)
        lo, hi = max(0, f - pre), min(n_frames, f + int(np.ceil(ring * s.sample_rate / s.hop)) + 1)
        if lo < hi:
            M[cols[n.drum], lo:hi] = True
    return M


def note_templates(V: np.ndarray, frames: np.ndarray, others: np.ndarray, s: StftSettings) -> np.ndarray:
    """(K, T) unit-L1 templates of one drum learned from the take V (K x N): for each span of
    NOTE_STAGES_S after its note frames, the median over its clean notes (no note of another
    group, `others`, from CLEAN_PRE_S before the note to the span's end, and none of its own
    after it) of V there minus V just before the note (the tails of earlier hits), clipped at 0.
    A span with fewer than MIN_CLEAN_NOTES clean notes gives no template (T may be 0)."""
    per = lambda t: int(round(t * s.sample_rate / s.hop))
    pre = per(CLEAN_PRE_S)
    frames, others = np.sort(frames), np.sort(others)
    out = []
    for a_s, b_s in NOTE_STAGES_S:
        a, b = per(a_s), max(per(b_s), per(a_s) + 1)
        specs = []
        for f in frames:
            if f < 3 or f + b > V.shape[1]:
                continue
            near = np.searchsorted(others, f + b + 1) - np.searchsorted(others, f - pre)
            own = np.searchsorted(frames, f + b + 1) - np.searchsorted(frames, f + 1)
            if near or own:
                continue
            before = np.minimum(V[:, f - 3], V[:, f - 2])
            specs.append(np.maximum(V[:, f + a:f + b] - before[:, None], 0).mean(axis=1))
        if len(specs) >= MIN_CLEAN_NOTES:
            w = np.median(specs, axis=0)
            if w.sum() > 0:
                out.append(w / w.sum())
    return np.array(out, np.float64).T if out else np.zeros((V.shape[0], 0))


def take_templates(V: np.ndarray, W0: np.ndarray, cols: list[np.ndarray], notes: list[ScoreNote],
                   offset_s: float, s: StftSettings) -> tuple[np.ndarray, list[np.ndarray]]:
    """(W, cols): each drum's templates replaced by its note_templates from the take (a drum with
    none keeps W0's), the residual's kept; the new columns of each group, in the same order.
    Measured mixed on kits the preset never heard (docs/score-informed.md, 2026-12-08)."""
    frames = note_frames(np.array([n.time_s for n in notes]) + offset_s, s)
    drums = np.array([n.drum for n in notes])
    groups = []
    for d, c in enumerate(cols[:-1]):
        T = note_templates(V, frames[drums == d], frames[drums != d], s)
        groups.append(T if T.shape[1] else W0[:, c])
    groups.append(W0[:, cols[-1]])
    ends = np.cumsum([g.shape[1] for g in groups])
    return np.concatenate(groups, axis=1), [np.arange(e - g.shape[1], e) for e, g in zip(ends, groups)]


def solo_templates(V: np.ndarray, W0: np.ndarray, M: np.ndarray, cols: list[np.ndarray],
                   iterations: int = SOLO_ITERATIONS) -> np.ndarray:
    """W0 with each drum's templates first fitted to the frames where only its windows are open
    (with the residual, penalised outside its windows, taking toms, cymbals and the room), so
    that the templates of a kit the preset never heard learn from its clean hits before the
    joint factorisation. Measured mixed (large gains on some kits, large losses on others, see
    docs/score-informed.md): separate_informed uses it only when asked (solo=True)."""
    W = np.array(W0, np.float64)
    res = cols[-1]
    for d, c in enumerate(cols[:-1]):
        others = np.concatenate([o for j, o in enumerate(cols[:-1]) if j != d])
        solo = M[c].any(axis=0) & ~M[others].any(axis=0)
        if solo.sum() >= MIN_SOLO_FRAMES:
            rows = np.concatenate([c, res])
            Ws, _ = factorise(V[:, solo], W[:, rows], M[rows][:, solo], np.arange(len(c)),
                              np.arange(len(c), len(rows)), iterations)
            W[:, c] = Ws[:, :len(c)]
    return W


def factorise(V: np.ndarray, W0: np.ndarray, M: np.ndarray, adapt_cols: np.ndarray, free: np.ndarray,
              iterations: int = ITERATIONS, free_frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """KL-NMF V ~= W H; H is zero where M is False, except the rows `free` (the residual), which
    may be active anywhere but pay RESIDUAL_PENALTY per unit of activation outside M. Only W's
    adapt_cols are updated, and, with free_frames (N bools, some True), the free columns too, from
    those frames only; W starts at W0 (unit L1 columns, kept so). Returns (W, H) >= 0."""
    V = np.asarray(V, np.float32)
    W = np.array(W0, np.float32)
    allowed = M.copy()
    allowed[free] = True
    H = allowed.astype(np.float32) * np.float32(V.sum(axis=0).mean() / W.shape[1])
    ones = np.float32(EPS)
    den = np.where(M, np.float32(0), np.float32(RESIDUAL_PENALTY))   # rows outside `free` stay 0 anyway
    parts = [(adapt_cols, slice(None))]
    if free_frames is not None and np.any(free_frames) and len(free):
        parts.append((free, np.flatnonzero(free_frames)))
    for _ in range(iterations):
        Q = V / (W @ H + ones)
        H *= (W.T @ Q) / (W.sum(axis=0)[:, None] + den + ones)
        Q = V / (W @ H + ones)
        for c, f in parts:
            if len(c) == 0:
                continue
            Wa = W[:, c]
            Ha = H[c][:, f]
            Wa *= (Q[:, f] @ Ha.T) / (Ha.sum(axis=1)[None, :] + ones)
            norms = Wa.sum(axis=0) + ones
            W[:, c] = Wa / norms
            H[c] *= norms[:, None]
    return W.astype(np.float64), H.astype(np.float64)


def synthesise(X: np.ndarray, masks, s: StftSettings, n: int) -> np.ndarray:
    """Overlap-add each mask (frames x bins; any iterable) applied to the frames X with the
    engine's synthesis window; (n, number of masks) samples aligned to the input."""
    ws = synthesis_window(s)
    lo = s.n_fft - s.synthesis                   # the synthesis window is zero before this
    frames = X.shape[0]
    outs = []
    for m in masks:
        out = np.zeros(frames * s.hop + s.n_fft)
        y = np.fft.irfft(X * m, n=s.n_fft, axis=1)[:, lo:] * ws[lo:]
        first = s.hop + lo                       # frame 0's first synthesised sample, shifted by n_fft
        for k in range(s.synthesis // s.hop):    # frames overlap by synthesis/hop hops
            a = first + k * s.hop
            out[a:a + frames * s.hop] += y[:, k * s.hop:(k + 1) * s.hop].ravel()
        outs.append(out[s.n_fft:s.n_fft + n])
    return np.stack(outs, axis=1)


def _masks(W: np.ndarray, H: np.ndarray, cols: list[np.ndarray], exponent: float):
    """Each drum's mask (frames x bins, float32): its model W_g H_g to the exponent over the sum of
    all groups'; one group's model at a time, to keep long takes in memory."""
    W32, H32 = W.astype(np.float32), H.astype(np.float32)
    model = lambda c: (H32[c].T @ W32[:, c].T) ** np.float32(exponent)
    den = sum(model(c) for c in cols)
    np.maximum(den, np.float32(1e-30), out=den)
    for c in cols[:-1]:
        yield model(c) / den


def separate_informed(x: np.ndarray, rate: int, preset: Preset, notes: list[ScoreNote],
                      offset_s: float = 0.0, tolerance_s: float = 0.05, iterations: int = ITERATIONS,
                      adapt: bool = True, path: str | Path = "score", refine: bool = False,
                      solo: bool = False, templates: str = "preset") -> InformedResult:
    """Align the score to x (mono, at rate); with `refine` move each note to its hit
    (refine_notes: measured unreliable with a preset's templates, so off by default); start each
    drum from the preset's templates (with `solo` first fitted to each drum's solo frames,
    solo_templates: measured mixed) or, with templates="take", from templates learned from the
    take's clean notes (take_templates; the residual's templates then adapt on its toms' and
    cymbals' windows: large gains on some unseen kits, large losses on ElectricEmpireKit, so not
    the default, docs/score-informed.md); factorise under the score's windows, mask, and place
    one trigger per scored drum note."""
    if templates not in ("take", "preset"):
        raise ValueError(f"templates must be 'take' or 'preset', got {templates!r}")
    s = preset.stft.scaled_to(rate)
    x = np.asarray(x, np.float64)
    check_inside(notes, len(x) / rate, offset_s, tolerance_s, path)
    n_frames = (len(x) + s.synthesis) // s.hop + 1
    X = frame_spectra(x, s, 0, n_frames)
    V = np.abs(X).T
    W0 = map_templates(preset.W, preset.stft, s)
    cols = _group_columns(preset)
    act = drum_activations(V, W0, cols)
    if tolerance_s > 0:
        offset_s, matched = align(notes, act, s, offset_s, tolerance_s, path)
    else:
        matched = float("nan")
    if refine and tolerance_s > 0:
        notes = refine_notes(notes, act, s, offset_s)
    free_frames = None
    if templates == "take":
        W0, cols = take_templates(V, W0, cols, notes, offset_s, s)
    M = window_mask(notes, offset_s, preset, s, n_frames, cols)
    adapt_cols = np.concatenate(cols[:-1]) if adapt else np.zeros(0, np.int64)
    if adapt and templates == "take":
        free_frames = M[cols[-1][0]]
    if adapt and solo and templates == "preset":
        W0 = solo_templates(V, W0, M, cols, min(iterations, SOLO_ITERATIONS))
    W, H = factorise(V, W0, M, adapt_cols, cols[-1], iterations, free_frames)
    drums = synthesise(X, _masks(W, H, cols, preset.mask_exponent), s, len(x))
    stems = np.concatenate([drums, (x - drums.sum(axis=1))[:, None]], axis=1).astype(np.float32)
    events = score_events(notes, offset_s, np.stack([H[c].sum(axis=0) for c in cols[:-1]]), preset, s, len(x))
    names = tuple(preset.drum_names) + ("residual",)
    return InformedResult(W, H, cols, stems, events, names, offset_s, matched, s, notes)


def score_events(notes: list[ScoreNote], offset_s: float, act: np.ndarray, preset: Preset,
                 s: StftSettings, n_samples: int) -> np.ndarray:
    """One event per scored drum note at its aligned sample, with a velocity from its drum's
    activation rise there (127 at the preset's full-velocity reference, the trigger's curve)."""
    span = max(1, int(round(VELOCITY_S * s.sample_rate / s.hop)))
    gamma = preset.trigger.velocity_gamma
    rows = []
    for n in notes:
        onset = int(round((n.time_s + offset_s) * s.sample_rate))
        if n.drum >= act.shape[0] or not 0 <= onset < n_samples:
            continue
        f = int(note_frames(n.time_s + offset_s, s))
        a = act[n.drum]
        before = a[max(0, f - 3):max(1, f)].min() if f > 0 else 0.0
        peak = a[max(0, f - 1):f + span + 1].max(initial=0.0)
        rise = max(peak - before, 0.0) / max(preset.drums[n.drum].reference, 1e-12)
        vel = int(np.clip(round(127 * rise ** gamma), 1, 127))
        rows.append((onset, onset, n.drum, n.note, vel, onset))
    ev = np.array(rows, dtype=EVENT_DTYPE) if rows else np.zeros(0, EVENT_DTYPE)
    return np.sort(ev, order="onset")


def run_informed_separation(input_path: Path, score_path: Path, out: Path, preset_name: str,
                            offset_ms: float = 0.0, tolerance_ms: float = 50.0) -> str:
    """`rtdrums separate --score`: write the stems and triggers of input_path into out, as
    `separate` does (files appear only when complete); returns the summary to print."""
    import shutil
    import tempfile

    from .audio import read_audio, resample, to_mono, write_audio
    from .events import write_csv, write_midi
    from .paths import ensure_writable_dir
    from .preset import load_preset

    if not (0 <= tolerance_ms <= 1000 and abs(offset_ms) < 600_000):
        raise UserError(f"--score-tolerance must be 0..1000 ms and --score-offset within 10 minutes, "
                        f"got {tolerance_ms} and {offset_ms}")
    data, rate = read_audio(input_path)
    preset = load_preset(preset_name)
    notes = read_score(score_path, preset)
    ensure_writable_dir(out)
    lo, hi = preset.stft.rate_range()
    engine_rate = rate if lo <= rate <= hi else preset.stft.sample_rate
    x = resample(to_mono(data), rate, engine_rate)
    res = separate_informed(x, engine_rate, preset, notes, offset_ms / 1000, tolerance_ms / 1000,
                            path=score_path)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".rtdrums-"))
    files = []
    try:
        stems = resample(res.stems, engine_rate, rate)[:len(data)]
        for i, name in enumerate(res.names):
            write_audio(staging / f"{name}.wav", stems[:, i], rate)
        write_csv(staging / "triggers.csv", res.events, engine_rate, res.names[:-1])
        write_midi(staging / "triggers.mid", res.events, engine_rate)
        for f in sorted(staging.iterdir()):
            f.replace(out / f.name)
            files.append(out / f.name)
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror}; check free space and permissions") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = ", ".join(f"{n} {int(np.sum(res.events['drum'] == d))}" for d, n in enumerate(res.names[:-1]))
    fit = (f"offset {res.offset_s * 1000:+.1f} ms, {res.matched:.0%} of its notes met an onset"
           if np.isfinite(res.matched) else "score taken as given (--score-tolerance 0)")
    lines = [f"separated {len(data) / rate:.1f} s with the score {score_path} (preset {preset.name}): {fit}",
             f"triggers (the score's notes, velocities from the audio): {counts}"]
    return "\n".join(lines + [f"wrote {f}" for f in files])
