"""Training the learned trigger (rtdrums.dsp.onset_model) on grooves rendered with the kit(s) it is for.

The kits play the Groove MIDI Dataset cuts shipped for it (rtdrums/data/grooves/model: the first
15 s of 200 grooves of the dataset's training split, and 40 windows of 15 s rich in open hi-hats),
each played by one of the kits in turn. Each take has one stretch of silence cut into it, as a
gate or a mute makes (the sound stops dead and comes back), so that the network learns that such
steps are not hits. The engine's analysis, with the preset's templates, records every frame's
features, labelled with the drums whose attack (rtdrums.training.render.Onset.attack_s after the onset)
came in the LABEL_MS before the frame's newest sample (the frames after those, up to LATE_MS or
OPEN_LATE_MS for an open hi-hat, are left out of the fit) and with the articulation of each
stroke (closed, open or pedal hi-hat). Labels start at the attack, not
at the sample's first audible value, because some kits' soft layers rise out of 3-9 ms of room
noise first: labelled from their start, a hit's first frames show nothing, and the network
learned to give soft hits low probabilities. A network with one hidden layer (scikit-learn's
MLPClassifier, one logistic output per drum and per articulation) learns the labels. Each drum's
threshold is the probability that gives the best onset F_0.5 (50 ms) on the training mixtures;
then, for each scan (0 to SCANS - 1 frames), the velocity read-out is fitted on the features of
the frame `scan` after each trigger on a true hit: a loudness score and a monotone curve per
articulation (rtdrums.training.velocity_fit).

More grooves, not longer ones, made the difference (fixture kit, validation grooves, hi-hat F):
40 grooves x 30 s 0.82-0.84, 200 x 15 s 0.86-0.90 over seeds, 100 x 30 s about the same. The
open-hat windows and the longer open-hat labels then took it to 0.91-0.92 (three seeds; each
alone about half of that), labels from the attack to 0.93 (one seed). On 12 other
training-split grooves x 30 s (F_1, 50 ms; one seed) labels from the attack gave
Millo_MultiLayered2, whose soft snares and kicks have 3-9 ms lead-ins, kick 0.94 -> 0.96, snare
0.78 -> 0.79, hi-hat 0.91 either way; ForzeeStereo, lead-ins of 0-2 ms, 0.89 / 0.87 / 0.89 ->
0.90 / 0.88 / 0.89.
"""
from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..dsp.adapt import with_adaptation
from ..engine import Engine
from ..dsp.onset_model import OnsetModel, default_band_hz, default_short_hz
from .memory import release_freed
from ..preset import Preset, articulations

GROOVE_SECONDS = 15.0    # of each model groove: many short grooves teach more than few long ones
LABEL_MS = 5.4           # a frame is labelled struck for an attack up to 2 hops (48 kHz, 128) before its end
LATE_MS = 10.7           # the frames after those, up to 4 hops: struck too, or with FIRST_FRAMES_ONLY
                         # left out of the fit (weight 0)
FIRST_FRAMES_ONLY = False  # measured: p95 latency -0.3 to -2 ms, but onset F -0.03 to -0.04 per drum
                           # (docs/latency.md), so the late frames stay labelled struck
OPEN_LATE_MS = 16.0      # and up to 6 hops for an open hi-hat, whose wash swells over 10-20 ms
OPEN_FIRST_FRAMES_ONLY = False  # True: an open hi-hat's frames after LABEL_MS left out of the fit (weight
                                # 0). Measured: hi-hat p95 -0.1 to -1.5 ms on unseen kits, F within the
                                # run-to-run spread; the retrained default lost F (docs/default-preset.md)
HARD_NEGATIVE_WEIGHT = 1.0     # loss weight of a drum's silence on another drum's attack frames
                               # (rtdrums.training.hard_negatives: e.g. no snare on a hi-hat stroke)
HIDDEN = 64
BATCH = 1000             # Adam minibatches: with LEARNING_RATE, a third faster than scikit-learn's
LEARNING_RATE = 0.003    # 200 at 1e-3, to the same fit
RETRIGGER_MS = 30.0
TAIL_S = 1.0             # a take's frames: GROOVE_SECONDS and the last hits' decay (about 0.6 s)
GATE_S = 0.3             # every training take has one stretch of silence this long (see _gated)
WINDOW_S = 0.05
BETA = 0.5               # thresholds maximise F_0.5, as the threshold detector's tuning does: on
                         # stage a phantom snare is worse than a missed ghost note
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
WORKERS = min(2, os.cpu_count() or 1)    # threads rendering and analysing the takes
FIT_WORKERS = WORKERS    # threads fitting the networks of an ensemble (one BLAS thread each)
FINE_TUNE_RATE = 0.001   # Adam's step when starting from a trained network: LEARNING_RATE's
                         # larger steps would first undo what it knows
FINE_TUNE_EPOCHS = 12    # at most, when fine-tuning (from scratch: 300, with early stopping)
ENSEMBLE_PLATEAU = 0.01  # an ensemble's threshold: the lowest whose F_0.5 is this close to the best
                         # (its averaged probabilities are flatter; the best alone cost a calibrated
                         # preset's hi-hat up to 0.06 of F on validation grooves: docs/calibration.md)


def model_grooves() -> list[Path]:
    from .render import shipped_grooves

    return shipped_grooves("model")


def open_hat_windows() -> list[Path]:
    """The model grooves that are windows rich in open hi-hats (names ending in _fromNs)."""
    import re

    return [g for g in model_grooves() if re.search(r"_from\d+s$", g.stem)]


def hat_takes(kits: Sequence, n: int, seed: int = 0) -> tuple[list[Path], list]:
    """n more takes for the learned trigger's fit (hard negatives for the other drums on the
    hi-hat's attacks): open-hat windows, from the seed's on in a stride that visits every window,
    each two played by one kit, the kits in turn (in pairs, as model_kit_order: with rooms 0.5
    each kit gets a dry and a room take). Returns the grooves and the kit of each."""
    windows = open_hat_windows()
    grooves = [windows[(seed + 7 * j) % len(windows)] for j in range(n)]
    return grooves, [kits[j // 2 % len(kits)] for j in range(n)]


SHORT_HZ = default_short_hz()


def record_features(engine: Engine, mix: np.ndarray, band_hz: np.ndarray,
                    short_hz: np.ndarray = SHORT_HZ) -> np.ndarray:
    """The onset model's features (frames, F) of a mixture, the engine run from a fresh start."""
    return engine.analyse(mix, band_hz, short_hz)[1]


def frame_labels(onsets: Sequence[np.ndarray], frames: int, hop: int, sample_rate: int,
                 late_ms: Sequence[np.ndarray] | None = None,
                 first_only: bool | Sequence[np.ndarray] = FIRST_FRAMES_ONLY) -> np.ndarray:
    """Per frame and column (int8): 1 struck, the attack came in the LABEL_MS before the frame's
    end; late, it came before that but within each onset's late_ms (default LATE_MS): -1 with
    first_only (a bool, or per column one bool per onset), else 1 (struck); else 0.

    Only the first frames that hold the attack are struck, so that the network decides on them;
    the late ones are left out of the fit (train_onset_model): a decision there is not wrong,
    only slower, and the retrigger time keeps it from doubling an early one."""
    y = np.zeros((frames, len(onsets)), np.int8)
    ends = (np.arange(frames) + 1) * hop
    first = LABEL_MS / 1000 * sample_rate
    for d, on in enumerate(onsets):
        spans = np.full(len(on), LATE_MS) if late_ms is None else late_ms[d]
        left_out = np.full(len(on), first_only) if isinstance(first_only, bool) else first_only[d]
        for s, ms, out in zip(on, spans, left_out):
            late = (ends > s + first) & (ends <= s + max(ms, LABEL_MS) / 1000 * sample_rate)
            y[late & (y[:, d] == 0), d] = -1 if out else 1
        for s in on:
            y[(ends > s) & (ends <= s + first), d] = 1
    return y


def fit_weights(labels: np.ndarray) -> np.ndarray:
    """Sample weights of the network's fit: 0 for a frame that is late for any column, else 1."""
    return np.where((labels < 0).any(axis=1), 0.0, 1.0)


def pick(prob: np.ndarray, threshold: float, retrig: int) -> np.ndarray:
    """Frames at which a drum triggers: probability above threshold, retrig frames apart (as
    onset_model.detect does)."""
    out, last = [], -retrig
    for m in np.flatnonzero(prob > threshold):
        if m - last >= retrig:
            out.append(m)
            last = m
    return np.array(out, np.int64)


def _matches(onsets, prob, threshold, retrig, hop, offset, sample_rate):
    """Trigger frames of one take and their (true onset index, trigger index) pairs at 50 ms."""
    import mir_eval

    frames = pick(prob, threshold, retrig)
    est = ((frames + 1) * hop - offset) / sample_rate
    return frames, mir_eval.util.match_events(onsets / sample_rate, est, WINDOW_S)


def _f_beta(onsets, probs, d, threshold, retrig, hop, offset, sample_rate) -> float:
    """Onset F_beta (BETA) of drum d over the takes."""
    hits = n_ref = n_est = 0
    for on, p in zip(onsets, probs):
        frames, pairs = _matches(on[d], p[:, d], threshold, retrig, hop, offset, sample_rate)
        hits, n_ref, n_est = hits + len(pairs), n_ref + len(on[d]), n_est + len(frames)
    b2 = BETA * BETA
    return (1 + b2) * hits / max(b2 * n_ref + n_est, 1)


def _decisions(takes, probs, d, threshold, retrig, hop, offset, sample_rate):
    """Rows of the feature matrix at which drum d triggers on a true hit, and its velocity / 127."""
    rows, target = [], []
    for t, p in zip(takes, probs):
        frames, pairs = _matches(t.onsets[d], p[:, d], threshold, retrig, hop, offset, sample_rate)
        rows += [t.start + frames[j] for _, j in pairs]
        target += [t.velocity[d][i] / 127 for i, _ in pairs]
    return np.array(rows, np.int64), np.array(target)


class _Take(NamedTuple):
    """One rendered groove as training sees it: rows start:stop of the feature matrix."""
    start: int
    stop: int
    onsets: list[np.ndarray]        # per drum, sample indices
    velocity: list[np.ndarray]      # per drum, MIDI velocities of those onsets


def _record(engine: Engine, kits: Sequence, grooves: Sequence[Path], seconds: float, band_hz: np.ndarray,
            progress: Callable[[], None] | None, rooms: float = 0.0, take_s: float | None = None):
    """Features (frames, F) float32, labels (frames, D + A: the drums, then their articulations;
    int8 as frame_labels gives them)
    and takes of the grooves, each played by one of the kits in turn (so that the amount of audio
    does not grow with the number of kits). The features are written into one matrix as they come
    (a list of takes stacked at the end would hold them twice: 3 GB more for the default preset).
    A share `rooms` of the takes are recordings in rooms (rtdrums.training.rooms.maybe_vary).
    With take_s each take ends after take_s seconds (else when its last sound has died away: a
    soundcheck's loudest strokes ring to the end of their take, up to 19 s on ForzeeStereo)."""
    from .render import render_groove
    from .rooms import MODEL_SEED, maybe_vary

    s = engine.settings
    arts, first = articulation_index(engine.preset)
    n_arts = int(engine.tables.group_art[len(engine.drum_names)])
    feats, labels, takes, n = None, [], [], 0
    capacity = len(grooves) * round((seconds + TAIL_S) * s.sample_rate / s.hop)
    local = threading.local()

    def analysed(i: int, groove: Path):
        """Render, gate and analyse one take, on a worker thread with its own engine."""
        if not hasattr(local, "engine"):
            local.engine = Engine(engine.preset, max_block=s.hop)
        r = maybe_vary(render_groove(groove, kits[i % len(kits)], s.sample_rate, max_seconds=seconds, end_s=take_s),
                       i, rooms, MODEL_SEED)
        mix = r.mix if take_s is None else r.mix[:round(take_s * s.sample_rate)]   # a room's tail too
        mix, keep = _gated(mix, r.samples(), s.sample_rate, np.random.default_rng(i))
        return r, keep, record_features(local.engine, mix, band_hz)

    # the engine's analysis is compiled without the GIL: takes are analysed WORKERS at a time,
    # and written in order, so the result does not depend on the number of workers
    with ThreadPoolExecutor(WORKERS) as pool:
        done = pool.map(analysed, range(len(grooves)), grooves)
        for r, keep, X in done:
            kept = [o for o, k in zip(r.onsets, keep) if k]
            at = np.array([round(o.time_s * s.sample_rate) for o in kept], np.int64)
            attack = at + np.array([round(o.attack_s * s.sample_rate) for o in kept], np.int64)
            drum = np.array([o.drum for o in kept], dtype=str)
            art = np.array([arts.get((o.drum, o.articulation), first.get(o.drum, -1)) for o in kept], np.int64)
            is_open = np.array([(o.drum, o.articulation) == ("hihat", "open") for o in kept], bool)
            span = np.where(is_open, OPEN_LATE_MS, LATE_MS)
            left_out = (is_open & OPEN_FIRST_FRAMES_ONLY) | FIRST_FRAMES_ONLY
            masks = [drum == d for d in engine.drum_names] + [art == a for a in range(n_arts)]
            onsets = [at[m] for m in masks[:len(engine.drum_names)]]
            feats = _rows_written(feats, n, X, capacity)
            labels.append(frame_labels([attack[m] for m in masks], len(X), s.hop, s.sample_rate,
                                       [span[m] for m in masks], [left_out[m] for m in masks]))
            takes.append(_Take(n, n + len(X), onsets,
                               [np.array([o.velocity for o in kept if o.drum == d]) for d in engine.drum_names]))
            n += len(X)
            if progress:
                progress()
    return feats[:n], np.concatenate(labels), takes


def _rows_written(buf: np.ndarray | None, n: int, X: np.ndarray, capacity: int) -> np.ndarray:
    """buf (created with capacity rows, grown by half when full) with X written from row n."""
    if buf is None or n + len(X) > len(buf):
        rows = max(n + len(X), capacity if buf is None else len(buf) * 3 // 2)
        grown = np.empty((rows, X.shape[1]), np.float32)
        if buf is not None:
            grown[:n] = buf[:n]
        buf = grown
    buf[n:n + len(X)] = X
    return buf


# training label of a hi-hat template: the articulation a rendered stroke carries
HAT_ARTICULATIONS = {"hihat_closed": "closed", "hihat_open": "open", "hihat_pedal": "pedal"}


def articulation_index(preset: Preset) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Which of the preset's drum articulations (rtdrums.preset.articulations) a rendered hit is:
    {(drum, render articulation): index} for the hi-hat's closed, open and pedal strokes where
    the preset has templates for them, and each drum's first articulation for every other hit."""
    art = articulations(preset)
    group_start = art["group_start"]
    index, first = {}, {}
    for d, drum in enumerate(preset.drums):
        a0, a1 = art["group_art"][d], art["group_art"][d + 1]
        first[drum.name] = int(a0)
        for a in range(a0, a1):
            r = art["art_start"][a] - group_start[d]
            label = drum.labels[r] if len(drum.labels) == drum.components else ""
            if label in HAT_ARTICULATIONS:
                index[(drum.name, HAT_ARTICULATIONS[label])] = int(a)
    return index, first


def _gated(mix: np.ndarray, onsets: np.ndarray, sample_rate: int, rng: np.random.Generator):
    """The mix with one stretch of GATE_S silenced at a random place, as a noise gate or a mute
    does (the sound stops and starts again abruptly), and which onsets (in r.onsets order) are
    still heard: a step to silence or out of it is not a hit, and the network must learn that."""
    length = round(GATE_S * sample_rate)
    start = int(rng.integers(0, max(1, len(mix) - length)))
    out = mix.copy()
    out[start:start + length] = 0.0
    return out, (onsets < start) | (onsets >= start + length)


def _standardise(X: np.ndarray, takes: Sequence[_Take]) -> tuple[np.ndarray, np.ndarray]:
    """X = (X - mean) / scale in place, take by take; returns mean and scale."""
    rows = [slice(t.start, t.stop) for t in takes]
    mean = sum(X[r].sum(axis=0, dtype=np.float64) for r in rows) / len(X)
    var = sum(np.square(X[r] - mean).sum(axis=0) for r in rows) / len(X)
    scale = np.maximum(np.sqrt(var), 1e-3)
    for r in rows:
        X[r] = (X[r] - mean) / scale
    return mean, scale


def train_onset_model(preset: Preset, kits: Sequence, grooves: Sequence[Path] | None = None,
                      seconds: float = GROOVE_SECONDS, progress: Callable[[], None] | None = None,
                      seed: int = 0, rooms: float = 0.0, start: Preset | None = None,
                      networks: int = 1, epochs: int = FINE_TUNE_EPOCHS, rate: float = FINE_TUNE_RATE,
                      hard_negative_weight: float = HARD_NEGATIVE_WEIGHT, take_s: float | None = None) -> Preset:
    """The preset with an onset model trained on grooves (default: model_grooves()) rendered with
    the kits, each groove with one kit in turn; a share `rooms` of them in rooms (rtdrums.training.rooms).

    With `start` (a preset whose onset model fits this one's bands: see fine_tune_start), the
    network starts from that model's weights instead of random ones and is fine-tuned for at most
    `epochs` with Adam's step `rate`: a network trained on several kits already tells drums apart
    by their spectra, and a few grooves of the new kit adapt it (docs/training-speed.md).
    `networks` > 1 fine-tunes that many of start's ensemble networks (all, if it has fewer), each
    from its own weights on the same features, into an ensemble of as many (fit_onset_model).
    hard_negative_weight: the loss weight of each drum's negatives on the frames where another
    drum is struck (rtdrums.training.hard_negatives). take_s: each take's length (see _record).
    `progress` is called once per groove rendered and once per network fitted."""
    base = with_adaptation(replace(preset, onset_model=None), False)     # trained templates only
    engine = Engine(base, max_block=base.stft.hop)
    band_hz = default_band_hz()
    Xs, labels, takes = _record(engine, list(kits), grooves or model_grooves(), seconds, band_hz, progress,
                                  rooms, take_s)
    for kit in kits:                  # not held through the fit (ForzeeStereo's: 0.11 GB)
        kit.forget_decoded()
    release_freed()
    mean, scale = _standardise(Xs, takes)
    model, how = fit_onset_model(engine, Xs, labels, takes, mean, scale, band_hz, seed, start, networks, epochs,
                                 rate, hard_negative_weight, progress)
    record = {"kits": list(dict.fromkeys(k.name for k in kits)), "grooves": len(takes), "seconds_per_groove": seconds,
              "rooms": rooms, **how,
              **({"hard_negative_weight": hard_negative_weight} if hard_negative_weight != 1.0 else {})}
    trained = replace(preset, onset_model=model, provenance={**preset.provenance, "learned_trigger": record})
    trained.validate()
    return trained


def fit_onset_model(engine: Engine, Xs: np.ndarray, labels: np.ndarray, takes: Sequence[_Take],
                    mean: np.ndarray, scale: np.ndarray, band_hz: np.ndarray, seed: int = 0,
                    start: Preset | None = None, networks: int = 1, epochs: int = FINE_TUNE_EPOCHS,
                    rate: float = FINE_TUNE_RATE,
                    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT,
                    progress: Callable[[], None] | None = None) -> tuple[OnsetModel, dict]:
    """The onset model fitted on standardised features Xs (frame_labels, _record's takes) of the
    preset the engine runs, and a provenance record (epochs, start).

    From scratch (no start, or one that does not fit): one network, up to 300 epochs with early
    stopping. With start: the first `networks` of its networks, each carried over by
    fine_tune_start and fitted for at most `epochs` with Adam's step `rate` (network k with
    seed + k). Several networks make an ensemble, judged on their averaged probabilities as the
    engine averages them: each threshold is the lowest whose F_0.5 is within ENSEMBLE_PLATEAU of
    the best (one network: the best); each network's velocity read-out (of the features and its
    own hidden units) is fitted on the ensemble's decisions, and the engine averages their
    velocities (velocity_fit). `progress` is called `networks` times (once without
    start): as each network is fitted (FIT_WORKERS at a time, each on one BLAS thread: the same as
    one after another), the last time when thresholds and read-out are set.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    from .velocity_fit import velocity_readouts

    s = engine.settings
    starts = []
    if start is not None:
        starts = [fine_tune_start(replace(start, onset_model=n), engine.preset, mean, scale)
                  for n in start.onset_model.networks[:max(1, networks)]]
        starts = [w for w in starts if w is not None]
    D = len(engine.drum_names)
    jobs = [(w, seed + k) for k, w in enumerate(starts)] or [(None, seed)]
    steps = max(1, networks) if start is not None else 1   # progress steps, the last when all is done
    nets = []
    # one BLAS thread for the whole pool, and a fine-tune's warning (it stops at its epochs by
    # design) off for the whole pool: a worker's own setting, undone as it ends, would undo the other's
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(), \
            ThreadPoolExecutor(min(FIT_WORKERS, len(jobs))) as pool:
        if starts:
            warnings.simplefilter("ignore", ConvergenceWarning)
        def fitted(job):                      # a network and its outputs on every take
            net = _fitted(Xs, labels, *job, epochs, rate, D, hard_negative_weight)
            return net, [net.predict_proba(Xs[t.start:t.stop]) for t in takes]

        each = []
        for net, p in pool.map(fitted, jobs):
            nets.append(net)
            each.append(p)
            if progress and len(nets) < steps:
                progress()

    def outputs(X):
        return sum(n.predict_proba(X) for n in nets) / len(nets)

    probs = [sum(p[i] for p in each) / len(nets) for i in range(len(takes))]     # outputs of each take
    del each
    retrig = max(1, -(-round(RETRIGGER_MS / 1000 * s.sample_rate) // s.hop))   # frames, as the engine counts
    offset = engine.params.onset_offset
    onsets = [t.onsets for t in takes]
    within = ENSEMBLE_PLATEAU if len(nets) > 1 else 0.0
    threshold = tuple(lowest_near_best([_f_beta(onsets, probs, d, t, retrig, s.hop, offset, s.sample_rate)
                                        for t in THRESHOLDS], within) for d in range(D))

    def hidden(n):
        return lambda X: np.maximum(X @ n.coefs_[0] + n.intercepts_[0], 0)

    fits = velocity_readouts(outputs, Xs, takes, probs, threshold, engine, retrig, [hidden(n) for n in nets])
    models = [OnsetModel(band_hz=band_hz, mean=mean, scale=scale,
                         w1=n.coefs_[0].astype(np.float64), b1=n.intercepts_[0].astype(np.float64),
                         w2=n.coefs_[1].astype(np.float64), b2=n.intercepts_[1].astype(np.float64),
                         vel_w=vel_w, vel_b=vel_b, threshold=threshold, retrigger_ms=RETRIGGER_MS,
                         short_hz=SHORT_HZ, vel_map=vel_map, vel_h=vel_h)
              for n, (vel_w, vel_b, vel_map, vel_h) in zip(nets, fits)]
    if progress:
        for _ in range(steps - min(len(nets), steps - 1)):
            progress()
    how = {"epochs": [int(n.n_iter_) for n in nets] if len(nets) > 1 else int(nets[0].n_iter_),
           "fine_tuned_from": start.name if starts else "none (trained from scratch)"}
    if len(nets) > 1:
        how["networks"] = len(nets)
    return replace(models[0], members=tuple(models[1:])), how


def lowest_near_best(f: Sequence[float], within: float = 0.0) -> float:
    """The lowest of THRESHOLDS whose score (f, one per threshold) is within `within` of the best."""
    return float(next(t for t, x in zip(THRESHOLDS, f) if x >= max(f) - within))


def _fitted(Xs: np.ndarray, labels: np.ndarray, initial: "NetWeights | None", seed: int, epochs: int,
            rate: float = FINE_TUNE_RATE, drums: int = 0, hard_weight: float = HARD_NEGATIVE_WEIGHT):
    """A network fitted on Xs: from `initial` for at most `epochs` with Adam's step `rate`
    (a fine-tune), or from scratch (seed) for up to 300 with early stopping; with hard_weight != 1
    each of the `drums` outputs' negatives on another drum's attack weigh that much
    (rtdrums.training.hard_negatives)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    from .hard_negatives import HardNegativeMLP

    net = HardNegativeMLP((HIDDEN,), alpha=1e-3, batch_size=BATCH,
                          learning_rate_init=LEARNING_RATE if initial is None else rate,
                          max_iter=300 if initial is None else epochs, early_stopping=True,
                          random_state=seed)
    net.drums, net.hard_weight = drums, hard_weight
    # one BLAS thread: the fit's rounding, and so its early stop and the thresholds, would differ
    # with the thread count (measured: thresholds 0.85 / 0.7 / 0.65 on 2 threads, 0.75 / 0.8 /
    # 0.75 on one), and a preset must not depend on the machine it was trained on
    with threadpool_limits(limits=1, user_api="blas"):
        if initial is not None:
            _warm_start(net, Xs, labels, initial)
        with warnings.catch_warnings():
            if initial is not None:            # a fine-tune stops at its epochs by design
                warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(Xs, labels > 0, sample_weight=fit_weights(labels))
    return net


class NetWeights(NamedTuple):
    """A one-hidden-layer network: w1 (F, U), b1 (U,), w2 (U, O), b2 (O,) on standardised features."""
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray


def fine_tune_start(start: Preset, preset: Preset, mean: np.ndarray, scale: np.ndarray) -> NetWeights | None:
    """The network of start's onset model carried over to the features of `preset` standardised
    with mean and scale, or None if start has no model on the same bands and hidden size.

    Band and short-window features mean the same under any templates: their weights are carried
    over, rescaled to the new standardisation (the bias takes up the shift of the means), so the
    network computes what it did on them. An activation feature of template r counts for what
    the start's activations of the same category (training label, e.g. hihat_open) did, shared
    among the new templates of that category; a category the start lacks starts at zero. Outputs
    (drums, then articulations) come from the start's output of the same drum and label.
    """
    from ..dsp.onset_model import LAGS

    m = start.onset_model
    if m is None or m.b1.shape[0] != HIDDEN or not np.allclose(m.band_hz, default_band_hz()) \
            or len(m.short_hz) != len(SHORT_HZ) or not np.allclose(m.short_hz, SHORT_HZ) \
            or start.drum_names != preset.drum_names:
        return None
    B, S = len(m.band_hz) - 1, len(SHORT_HZ) - 1
    old_labels, new_labels = component_labels(start), component_labels(preset)
    Z0, Z = B + len(old_labels) + S, B + len(new_labels) + S
    if m.w1.shape[0] != (LAGS + 1) * Z0 or len(mean) != (LAGS + 1) * Z:
        return None
    w1 = np.zeros((len(mean), HIDDEN))
    b1 = np.array(m.b1, np.float64)
    old_w = m.w1 / m.scale[:, None]                  # weights on the raw features
    for lag in range(LAGS + 1):
        for z in list(range(B)) + list(range(Z - S, Z)):
            f, f0 = lag * Z + z, lag * Z0 + (z if z < B else z - Z + Z0)
            w1[f] = old_w[f0] * scale[f]
            b1 += old_w[f0] * (mean[f] - m.mean[f0])
        for r, label in enumerate(new_labels):
            same = [q for q, old in enumerate(old_labels) if old == label]
            if same:
                share = sum(m.w1[lag * Z0 + B + q] for q in same) / new_labels.count(label)
                w1[lag * Z + B + r] = share
    old_out, new_out = output_labels(start), output_labels(preset)
    pick_out = [old_out.index(o) if o in old_out else old_out.index((o[0], "")) for o in new_out]
    return NetWeights(w1, b1, np.array(m.w2[:, pick_out], np.float64), np.array(m.b2[pick_out], np.float64))


def component_labels(preset: Preset) -> list[str]:
    """Each template's category (the drums' labels, then the residual's; the drum's name where
    a preset has no labels)."""
    out = []
    for d in preset.drums:
        out += list(d.labels) if len(d.labels) == d.components else [d.name] * d.components
    return out + list(preset.residual_labels)


def output_labels(preset: Preset) -> list[tuple[str, str]]:
    """The onset model's outputs: (drum, "") per drum, then (drum, label) per articulation."""
    art = articulations(preset)
    labels = component_labels(preset)
    out = [(d.name, "") for d in preset.drums]
    for d, drum in enumerate(preset.drums):
        for a in range(art["group_art"][d], art["group_art"][d + 1]):
            out.append((drum.name, labels[art["art_start"][a]]))
    return out


def _warm_start(net, X: np.ndarray, labels: np.ndarray, initial: NetWeights) -> None:
    """Set up net (an MLPClassifier) to continue from `initial` on its next fit: one epoch on a
    few rows creates the fitted state scikit-learn keeps, then the weights are replaced and the
    early-stopping record cleared."""
    from sklearn.exceptions import ConvergenceWarning

    rows = slice(0, min(len(X), 4 * BATCH))
    max_iter, early = net.max_iter, net.early_stopping
    net.set_params(max_iter=1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(X[rows], labels[rows] > 0)
    dtype = net.coefs_[0].dtype
    net.coefs_ = [initial.w1.astype(dtype), initial.w2.astype(dtype)]
    net.intercepts_ = [initial.b1.astype(dtype), initial.b2.astype(dtype)]
    net.set_params(max_iter=max_iter, early_stopping=early, warm_start=True)
    net.loss_curve_, net.best_loss_, net._no_improvement_count = [], np.inf, 0
    if early:
        net.validation_scores_, net.best_validation_score_ = [], -np.inf
