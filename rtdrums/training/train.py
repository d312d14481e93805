"""Learning templates from isolated hits: a Hydrogen kit, or a folder of labelled recordings.

Each hit category (kick, snare, closed/open/pedal hi-hat, toms, cymbals, other) gets its own
small NMF on the frames the streaming engine would see of its hits; the columns of all these W
are stacked into the preset's template matrix. Toms, cymbals and anything else become residual
components: they let the solver explain those sounds without leaking them into a drum. Finally
every drum's reference (the activation rise of a full-velocity hit, velocity 127) and the cross-talk
between drums are measured by running the real engine over the hits. Given Hydrogen kits, the
trigger settings are then tuned on grooves rendered with them (rtdrums.training.trigger_tuning).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..audio import read_audio, resample, to_mono
from ..errors import UserError
from ..dsp.adapt import with_adaptation
from ..dsp.nmf import nmf
from ..progress import Stage
from ..preset import DRUM_DEFAULTS, GM_NOTES, DrumSettings, Preset
from ..dsp.stft import StftSettings, spectrogram

# hit category -> (drum it belongs to or None for residual, MIDI note, components)
CATEGORIES = {
    "kick": ("kick", GM_NOTES["kick"], 4),
    "snare": ("snare", GM_NOTES["snare"], 6),
    "hihat_closed": ("hihat", GM_NOTES["hihat"], 3),
    "hihat_open": ("hihat", GM_NOTES["hihat_open"], 1),
    "hihat_pedal": ("hihat", GM_NOTES["hihat_pedal"], 1),
    "tom": (None, 0, 2),
    "cymbal": (None, 0, 2),
    "other": (None, 0, 1),
}
DRUMS = ("kick", "snare", "hihat")
FOLDER_ALIASES = {"hihat": "hihat_closed", "hh": "hihat_closed", "bd": "kick", "sd": "snare",
                  "toms": "tom", "cymbals": "cymbal", "residual": "other"}
HIT_SECONDS = 0.25           # frames of each hit used for training: its first quarter second
SILENCE_DB = -50.0           # frames this far below a file's loudest are not part of a hit
# splitting recordings into hits (split_hits): a hit starts where the level rises ONSET_RISE_DB
# above the loudest of the 10-50 ms before, at most -HIT_FLOOR_DB below the recording's loudest,
# at least MIN_HIT_GAP_S after the previous hit
ONSET_RISE_DB = 12.0
HIT_FLOOR_DB = -45.0
MIN_HIT_GAP_S = 0.08
LOUD_DB = -3.0               # hits this close to a drum's loudest count as full velocity
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}

Hits = dict[str, list[tuple[np.ndarray, float | None]]]   # category -> [(mono audio, velocity01)]


def hits_from_kit(kit, sample_rate: int, samples: int | None = None) -> tuple[Hits, dict]:
    """Every velocity layer of a Hydrogen kit (a loaded Kit or its folder), by category; plus a
    provenance record. With `samples` (hit_samples: all that training reads of a kit's hit),
    each hit is cut to its first that many."""
    from .kits import Kit, load_kit

    kit = kit if isinstance(kit, Kit) else load_kit(kit)
    hits: Hits = {}
    for category in CATEGORIES:
        found = kit.hits(category, sample_rate, samples)
        if found:
            hits[category] = [(np.asarray(a, np.float32), v) for a, v in found]
    return hits, {"kit": kit.name, "kit_license": kit.license}


def kit_hit_sets(kits: Sequence, settings: StftSettings) -> tuple[list, list[Hits], list[dict]]:
    """Hydrogen kits (loaded Kits or folders) as training reads them, at settings' rate: the
    loaded kits, the hit set of each (hits_from_kit with every hit cut to hit_samples(settings),
    so that a cymbal's 12 s tail is not held through the training) and their provenance records.
    What `train --kit` and `eval --calibrate` hold of a kit's samples."""
    from .kits import Kit, load_kit

    loaded = [k if isinstance(k, Kit) else load_kit(k) for k in kits]
    read = [hits_from_kit(kit, settings.sample_rate, hit_samples(settings)) for kit in loaded]
    return loaded, [h for h, _ in read], [prov for _, prov in read]


def hits_from_folder(path: str | os.PathLike, sample_rate: int) -> tuple[Hits, dict]:
    """Recordings in sub-folders named by category (kick/, snare/, hihat/, hihat_open/, tom/ ...),
    audio files or `rtdrums live` sessions recorded there, split into single hits (split_hits).
    A hit's velocity01 is its peak relative to the loudest of its category; those within LOUD_DB
    of it count as 1 (the full-velocity reference)."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; give a folder with kick/, snare/, hihat/ sub-folders")
    found: dict[str, list[np.ndarray]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        category = FOLDER_ALIASES.get(sub.name.lower(), sub.name.lower())
        if category not in CATEGORIES:
            continue
        for f in _recordings(sub):
            data, rate = read_audio(f)
            found.setdefault(category, []).extend(
                split_hits(resample(to_mono(data), rate, sample_rate), sample_rate))
    hits: Hits = {}
    for category, items in found.items():
        if items:
            peaks = np.array([np.max(np.abs(a)) for a in items])
            v = peaks / peaks.max()
            v[v >= 10 ** (LOUD_DB / 20)] = 1.0
            hits[category] = [(a, float(x)) for a, x in zip(items, v)]
    known = ", ".join(CATEGORIES)
    if not hits:
        raise UserError(f"{root}: no audio files with hits in sub-folders named {known}")
    return hits, {"hits_folder": root.name}


def _recordings(folder: Path) -> list[Path]:
    """The audio files in a category folder, and the input of every `rtdrums live` session
    recorded into it (a sub-folder with session.json; its stems are not hits)."""
    out = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES:
            out.append(f)
        elif f.is_dir() and (f / "session.json").is_file():
            try:
                name = json.loads((f / "session.json").read_text())["files"]["input"]
            except (OSError, ValueError, KeyError, TypeError):
                raise UserError(f"{f / 'session.json'}: not a readable rtdrums session; "
                                f"move its input.wav into {folder} instead") from None
            out.append(f / name)
    return out


def split_hits(audio: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """The hits in a recording of one drum, each from its first sample to the next hit's.

    The level is the energy in 10 ms windows every 2.5 ms (long enough that a tom's low partials
    do not make it flicker); a hit starts where it rises ONSET_RISE_DB above the loudest level
    of the 10 to 50 ms before (a decaying or beating tail never does), no more than
    -HIT_FLOOR_DB below the recording's loudest. Its first sample is the first above both
    ONSET_DB re its peak (as kit samples are trimmed) and six times the level just before it.
    """
    from .kits import ONSET_DB

    x = np.asarray(audio, np.float32)
    n = max(1, round(0.0025 * sample_rate))
    m = len(x) // n
    if m == 0 or not np.any(x[:m * n]):
        return []
    frame_energy = np.sum(x[:m * n].reshape(m, n).astype(np.float64) ** 2, axis=1)
    level = 10 * np.log10(np.convolve(frame_energy, np.ones(4))[:m] + 1e-30)
    floor, gap = level.max() + HIT_FLOOR_DB, max(1, round(MIN_HIT_GAP_S * sample_rate / n))
    quiet = np.percentile(level, 10)           # stands for the unheard level before the recording
    starts: list[int] = []
    for i in range(m):
        before = level[max(0, i - 20):max(0, i - 3)]
        if level[i] >= floor and level[i] - max(before.max() if before.size else quiet, quiet) >= ONSET_RISE_DB \
                and (not starts or i - starts[-1] >= gap):
            starts.append(i)
    cuts = []
    for k, i in enumerate(starts):
        lo, end = max(0, (i - 3) * n), starts[k + 1] * n if k + 1 < len(starts) else len(x)
        room = x[max(0, lo - 2 * n):lo].astype(np.float64)
        threshold = max(np.max(np.abs(x[lo:end])) * 10 ** (ONSET_DB / 20),
                        6 * float(np.sqrt(np.mean(room ** 2))) if room.size else 0.0)
        above = np.flatnonzero(np.abs(x[lo:(i + 1) * n]) > threshold)
        cuts.append(lo + int(above[0]) if above.size else i * n)
    return [x[a:b].copy() for a, b in zip(cuts, cuts[1:] + [len(x)])]


def kit_from_hits(hits: Hits, name: str, sample_rate: int):
    """Hits as a kit that grooves can be rendered with (for trigger tuning): each category's
    hits become the velocity layers of one instrument, quietest first."""
    from .kits import Kit

    return Kit.from_audio(name, {c: [a for a, _ in sorted(items, key=lambda it: it[1] or 0.0)]
                                 for c, items in hits.items()}, sample_rate)


def hit_frames(audio: np.ndarray, settings: StftSettings, single_hit: bool) -> np.ndarray:
    """Magnitude frames (K x n) that the engine sees of a recording's hits, silence dropped.

    Of a single hit (a kit sample) only the first HIT_SECONDS count: the attack and body that
    triggers and masks depend on, not a cymbal's long tail; silence is judged against its loudest
    frame there.
    """
    if single_hit:                           # the rest of a ringing take is not looked at
        audio = audio[:hit_span(settings)]
    pad = np.zeros(settings.n_fft, np.float32)
    V = spectrogram(np.concatenate([audio, pad]), settings)
    energy = V.sum(axis=0)
    if energy.max() <= 0:
        return V[:, :0]
    keep = energy > energy.max() * 10 ** (SILENCE_DB / 20)
    if single_hit:
        keep[int(HIT_SECONDS * settings.sample_rate / settings.hop):] = False
    return V[:, keep]


def hit_span(settings: StftSettings) -> int:
    """The samples of a single hit that hit_frames analyses: its first HIT_SECONDS and the frame
    that ends there."""
    return round(HIT_SECONDS * settings.sample_rate) + settings.n_fft


def hit_samples(settings: StftSettings) -> int:
    """How much of a single hit (a kit sample) training reads: hit_frames' hit_span and
    activation_rises' RISE_FRAMES. Cutting a kit's hits to this leaves the templates and
    references as they are (tests/test_kit_training_memory.py) and does not hold a cymbal's 12 s
    tail through the training."""
    return max(hit_span(settings), RISE_FRAMES * settings.hop)


def learn_templates(hits: Hits, settings: StftSettings, components: dict[str, int] | None = None,
                    iterations: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """category -> W (K x R_c) learnt by KL-NMF on the frames of that category's hits (in single
    precision, on one BLAS thread: the frames are float32 spectra anyway)."""
    from threadpoolctl import threadpool_limits

    components = {c: n for c, (_, _, n) in CATEGORIES.items()} | (components or {})

    def learnt(category: str) -> np.ndarray | None:
        items = hits[category]
        V = np.concatenate([hit_frames(a, settings, v is not None) for a, v in items], axis=1)
        R = min(components[category], max(V.shape[1], 1))
        if V.shape[1] == 0 or R == 0:
            return None
        W, _ = nmf(V, R, n_iter=iterations, seed=seed, dtype=np.float32)
        W = W.astype(np.float64)
        return W / W.sum(axis=0)

    def samples_read(category: str) -> int:
        return sum(min(len(a), hit_samples(settings)) if v is not None else len(a) for a, v in hits[category])

    # categories on two threads (numpy's loops release the GIL), each with one BLAS thread; the
    # largest first, so that the last to finish is a small one
    order = sorted(hits, key=samples_read, reverse=True)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        found = dict(zip(order, pool.map(learnt, order)))
    return {c: found[c] for c in hits if found[c] is not None}


def check_drums(categories) -> None:
    """A one-line error unless the categories cover kick, snare and hi-hat."""
    missing = [d for d in DRUMS if not any(CATEGORIES[c][0] == d for c in categories)]
    if missing:
        raise UserError(f"no hits found for {', '.join(missing)}: training needs kick, snare and hi-hat hits")


def build_preset(templates: dict[str, np.ndarray], settings: StftSettings, name: str,
                 provenance: dict, base: Preset | None = None) -> Preset:
    """Stack category templates into a preset (drums kick, snare, hihat, then residual)."""
    check_drums(templates)
    columns, drums = [], []
    unmeasured = (0.0,) * (len(DRUMS) + 1)       # calibrate() measures references and leaks
    for drum in DRUMS:
        notes, labels = [], []
        for category, W in templates.items():
            if CATEGORIES[category][0] == drum:
                columns.append(W)
                notes += [CATEGORIES[category][1]] * W.shape[1]
                labels += [category] * W.shape[1]
        old = next((d for d in base.drums if d.name == drum), None) if base else None
        # detector: chosen for the base's networks on kits they never heard, not for the ones trained here
        drums.append(replace(old, notes=tuple(notes), labels=tuple(labels), leak=unmeasured, detector=None) if old
                     else DrumSettings(drum, tuple(notes), tuple(labels), leak=unmeasured,
                                       **DRUM_DEFAULTS.get(drum, {})))
    residual = [c for c in templates if CATEGORIES[c][0] is None]
    columns += [templates[c] for c in residual]
    labels = tuple(c for c in residual for _ in range(templates[c].shape[1]))
    W = np.concatenate(columns, axis=1)
    if base is not None:
        # the base's learned trigger and encoder read the base's templates: they do not carry over
        from .autoencoder import without_encoder
        return replace(base, name=name, stft=settings, drums=tuple(drums), W=W,
                       residual_labels=labels, residual_leak=unmeasured, provenance=provenance,
                       onset_model=None, autoencoder=None, solver=without_encoder(base.solver))
    return Preset(name=name, stft=settings, drums=tuple(drums), W=W, residual_labels=labels,
                  residual_leak=unmeasured, provenance=provenance,
                  description="Templates learnt from isolated hits by `rtdrums train`.")


RISE_FRAMES = 12          # frames of a hit activation_rises reads


def activation_rises(engine, audio: np.ndarray, frames: int = RISE_FRAMES) -> np.ndarray:
    """Largest rise of each group's activation over the first frames of one hit, from silence.

    The rise is the trigger detector's own (onsets.detect, read from the engine's state after
    every frame): the sum of the rises of the group's articulations over its lookback.
    """
    from ..dsp.onsets import ST_RISE

    engine.reset()
    hop = engine.settings.hop
    lead = int(engine.tables.lookback.max())
    x = np.concatenate([np.zeros(lead * hop, np.float32), audio.astype(np.float32)])
    rises = np.zeros(engine.state.fstate.shape[0])
    for m in range(min(lead + frames, len(x) // hop)):
        engine.process(x[m * hop:(m + 1) * hop])
        np.maximum(rises, engine.state.fstate[:, ST_RISE], out=rises)
    return rises


LEAK_PERCENTILE = 90      # cross-talk a drum must tolerate: from all but the worst tenth of hits


def calibrate(preset: Preset, hits: Hits) -> Preset:
    """Measure, with the real engine, each group's full-velocity rise and the cross-talk matrix.

    Groups are the drums, then the residual. reference[g] is the median rise of group g's loudest
    hits; leak[g, d] is how far drum d rises, relative to its reference, per unit relative rise of
    group g when only g is struck (the LEAK_PERCENTILE-th percentile over g's hits).
    """
    from ..engine import Engine

    names = list(preset.drum_names) + ["residual"]
    G = len(names)
    engine = Engine(with_adaptation(preset, False), max_block=preset.stft.hop)
    rises = {g: [] for g in range(G)}
    loud = {g: [] for g in range(G)}
    for category, items in hits.items():
        g = names.index(CATEGORIES[category][0] or "residual")
        for audio, velocity in items:
            rises[g].append(activation_rises(engine, audio))
            loud[g].append((1.0 if velocity is None else velocity) if category != "hihat_pedal" else -1.0)
    reference = np.ones(G)
    for g in range(G):
        if not rises[g]:
            continue
        r, v = np.array(rises[g])[:, g], np.array(loud[g])
        ref = float(np.median(r[v >= v.max() - 1e-9]))
        if not ref > 0:
            raise UserError(f"the {names[g]} hits produce no activation: are the files silent?")
        reference[g] = ref
    leak = np.zeros((G, G))
    for g in range(G):
        if rises[g]:
            r = np.array(rises[g]) / reference
            own = np.maximum(r[:, g:g + 1], 1e-3)
            leak[g] = np.percentile(r / own, LEAK_PERCENTILE, axis=0)
            leak[g, g] = 0.0
    drums = tuple(replace(d, reference=float(reference[i]), leak=tuple(float(x) for x in leak[:, i]))
                  for i, d in enumerate(preset.drums))
    return replace(preset, drums=drums, residual_reference=float(reference[-1]),
                   residual_leak=tuple(float(x) for x in leak[:, -1]))


def train(hits: Hits | list[Hits], provenance: dict, name: str, settings: StftSettings | None = None,
          components: dict[str, int] | None = None, base: Preset | None = None,
          tune_kits: Sequence = (), tune_grooves: Sequence[Path] | None = None,
          progress: Callable[[], None] | None = None, learned: bool = True,
          model_grooves: Sequence[Path] | None = None, rooms: float = 0.0,
          scan_ms: float | None = None, schedule: Schedule | None = None,
          trigger_kits: Sequence = (), autoencoder: str | None = None,
          autoencoder_kits: Sequence = ()) -> Preset:
    """Templates and references from hits; settings other than these come from base (or defaults).

    `hits` may be a list of hit sets, one per source (kit or folder): each source then gets its
    own templates per category, stacked, because pooling the hits of different kits into one small
    NMF averages their spectra into templates that fit none of them. With tune_kits (loaded
    Hydrogen kits), the trigger settings are then tuned on grooves rendered with them, and with
    `learned` the learned trigger is trained on them (see tune); `rooms` of those renders are
    recordings in rooms (rtdrums.training.rooms); `trigger_kits` join the learned trigger's renders
    without templates in the preset (see tune). `progress` is called once per step of training_plan.
    `scan_ms` replaces the [trigger] scan_ms of base or the
    defaults (the delay from a trigger decision to its note-on). `schedule` says how much tuning
    renders (default FULL; FAST fine-tunes base's learned trigger on a few short grooves).
    `autoencoder` ("start" or "solver", rtdrums.training.autoencoder.use_encoder) trains the
    activations' encoder on grooves rendered with `autoencoder_kits` (default: tune_kits) and has
    the solver use it, before references, triggers and the learned trigger are measured.
    """
    settings = settings or (base.stft if base else StftSettings())
    sources = hits if isinstance(hits, list) else [hits]
    check_drums(pooled(sources))                 # before minutes of work, not after
    learnt = []
    for h in sources:
        learnt.append(learn_templates(h, settings, components))
        if progress:
            progress()
    templates = {c: np.concatenate([t[c] for t in learnt if c in t], axis=1)
                 for c in CATEGORIES if any(c in t for t in learnt)}
    preset = build_preset(templates, settings, name, provenance, base)
    if scan_ms is not None:
        preset = replace(preset, trigger=replace(preset.trigger, scan_ms=float(scan_ms)))
    preset.validate()
    if autoencoder:
        from .autoencoder import train_autoencoder, use_encoder
        kits = list(autoencoder_kits or tune_kits)
        if not kits:
            raise UserError("--autoencoder needs grooves rendered with a kit: give --kit DIR or --hits DIR")
        preset = use_encoder(train_autoencoder(preset, kits), autoencoder)
        if progress:
            progress()
    preset = calibrate(preset, pooled(sources))
    if progress:
        progress()
    if not tune_kits:
        return preset
    return tune(preset, tune_kits, tune_grooves, progress, learned, model_grooves, rooms, schedule, base,
                trigger_kits)


def pooled(hit_sets: Sequence[Hits]) -> Hits:
    """The hits of several sources, by category."""
    out: Hits = {}
    for h in hit_sets:
        for category, items in h.items():
            out.setdefault(category, []).extend(items)
    return out


@dataclass(frozen=True)
class Schedule:
    """How much tune() renders and how the learned trigger starts.

    tune_seconds of each tuning groove; model_grooves: how many of the learned trigger's grooves
    (spread evenly over them; None: all), model_seconds of each; fine_tune: the learned trigger
    starts from the base preset's (onset_training.fine_tune_start) where it fits;
    detector_with_learned: the threshold detector is tuned also when a learned trigger is trained
    (which replaces it in the engine; otherwise the detector keeps base's settings);
    the first fine_tune_networks of the base's ensemble networks (all, if it has fewer) are
    fine-tuned, into an ensemble of as many, for at most
    fine_tune_epochs each with Adam's step fine_tune_rate. cut_takes: each of the learned
    trigger's takes ends onset_training.TAIL_S after model_seconds (else when its last sound has
    died away: a soundcheck's loudest strokes ring to the end of their take, which made the
    ForzeeStereo soundcheck's 48 takes 694 s instead of 288 s).
    """
    tune_seconds: float = 30.0
    model_grooves: int | None = None
    model_seconds: float = 15.0
    fine_tune: bool = False
    detector_with_learned: bool = True
    fine_tune_networks: int = 1
    fine_tune_epochs: int = 12          # onset_training.FINE_TUNE_EPOCHS
    fine_tune_rate: float = 0.001       # onset_training.FINE_TUNE_RATE
    cut_takes: bool = False


FULL = Schedule()              # as the shipped preset is trained: the learned trigger from scratch
# a soundcheck's training (docs/training-speed.md): the base's learned trigger fine-tuned on 48
# grooves x 5 s (more patterns, not more seconds, is what teaches the open hi-hat and the snare's
# neighbours); the threshold detector is tuned (as in FULL) only when it is the trigger: the
# engine does not run it in a preset with a learned trigger. Every network of the shipped
# ensemble is fine-tuned, 3 epochs each at Adam's step 0.003, so that the preset keeps the
# ensemble's averaging (against one network fine-tuned for 12 epochs: F -0.006..+0.046 per drum,
# mostly gains, on three kits' validation and test grooves; docs/calibration.md)
FAST = Schedule(model_grooves=48, model_seconds=5.0, fine_tune=True, detector_with_learned=False,
                fine_tune_networks=7, fine_tune_epochs=3, fine_tune_rate=0.003, cut_takes=True)


def schedule_for(base: Preset | None, full: bool = False) -> Schedule:
    """What a kit's training runs: FAST when base has a learned trigger to fine-tune, else FULL."""
    return FULL if full or base is None or base.onset_model is None else FAST


def tuning_grooves(grooves: Sequence[Path] | None = None) -> list[Path]:
    """The grooves tune() renders: the given ones, or the shipped training split."""
    from .render import shipped_grooves

    return list(grooves or shipped_grooves("train"))


def learned_grooves(grooves: Sequence[Path] | None = None, schedule: Schedule | None = None) -> list[Path]:
    """The grooves the learned trigger is trained on: the given ones, or the shipped model
    grooves; schedule.model_grooves of them, evenly spread (they are sorted by drummer and style)."""
    from .onset_training import model_grooves as default_model_grooves

    out = list(grooves or default_model_grooves())
    n = (schedule or FULL).model_grooves
    if n is None or n >= len(out):
        return out
    return [out[i] for i in np.linspace(0, len(out) - 1, n).round().astype(int)]


# time of the steps on two cores, measured (docs/training-speed.md), in units of one category's
# templates: per hit measured, per second of a tuning take (analysed without the model's
# features), per second of a model take (with them), per setting tried and second of the takes it
# replays, per frame and epoch of a network's fit (two networks at a time); and the epochs of a
# fit from scratch (early stopping: 30-60). The tuning's and the scratch fit's are older CPU
# seconds (2026-12-06), the others the wall times of a soundcheck's training (2026-12-07)
TEMPLATE_WORK, CALIBRATE_WORK, RENDER_WORK, MODEL_RENDER_WORK = 1.0, 0.006, 0.05, 0.027
REPLAY_WORK, FIT_WORK, SCRATCH_EPOCHS = 2.5e-4, 5.5e-6, 40


def training_plan(hit_sets: Sequence[Hits], kits: Sequence, grooves: Sequence[Path] | None = None,
                  learned: bool = True, model_grooves: Sequence[Path] | None = None,
                  schedule: Schedule | None = None, trigger_kits: Sequence = (),
                  autoencoder: bool = False) -> list[Stage]:
    """The stages of train() in order (its progress steps): templates per source, the encoder with
    `autoencoder`, the references and cross-talk, then tune_plan when there are kits to tune on."""
    categories = sum(len(h) for h in hit_sets)
    hits = sum(len(v) for h in hit_sets for v in h.values())
    plan = [Stage("learning templates", len(hit_sets), TEMPLATE_WORK * categories / max(len(hit_sets), 1))]
    if autoencoder:
        from .autoencoder import TRAINING_WORK
        plan.append(Stage("training the autoencoder", 1, TRAINING_WORK))
    plan.append(Stage("measuring cross-talk", 1, CALIBRATE_WORK * hits))
    return plan + (tune_plan(kits, grooves, learned, model_grooves, schedule, trigger_kits) if kits else [])


def tune_plan(kits: Sequence, grooves: Sequence[Path] | None = None, learned: bool = True,
              model_grooves: Sequence[Path] | None = None, schedule: Schedule | None = None,
              trigger_kits: Sequence = ()) -> list[Stage]:
    """The stages of tune() in order, each with its progress steps and their work (seconds of
    audio analysed or their equivalent: only ratios matter, they make the time left honest)."""
    from .trigger_tuning import grid_size

    schedule = schedule or FULL
    plan = []
    if kits and tunes_detector(learned, schedule):
        takes = len(kits) * len(tuning_grooves(grooves))
        plan += [Stage("rendering tuning grooves", takes, RENDER_WORK * schedule.tune_seconds),
                 Stage("tuning triggers", grid_size(len(DRUMS), len(kits) == 1),
                       REPLAY_WORK * takes * schedule.tune_seconds)]
    if kits and learned:
        from .onset_training import TAIL_S

        n = len(learned_grooves(model_grooves, schedule))
        seconds = schedule.model_seconds + TAIL_S
        # one step per network fitted (fine-tuning: each of the base's, however many it has)
        networks, epochs = ((schedule.fine_tune_networks, schedule.fine_tune_epochs) if schedule.fine_tune
                            else (1, SCRATCH_EPOCHS))
        plan += [Stage("rendering trigger grooves", n, MODEL_RENDER_WORK * seconds),
                 Stage("fitting the learned trigger", networks, FIT_WORK * n * seconds * 375 * epochs)]
    return plan


def tunes_detector(learned: bool, schedule: Schedule | None = None) -> bool:
    """Whether tune() tunes the threshold detector's settings."""
    return not learned or (schedule or FULL).detector_with_learned


def tune_steps(kits: Sequence, grooves: Sequence[Path] | None = None, learned: bool = True,
               model_grooves: Sequence[Path] | None = None, schedule: Schedule | None = None,
               trigger_kits: Sequence = ()) -> int:
    """Progress steps of tune(): one per rendered groove and kit, one per setting tried, and for
    the learned trigger one per groove it renders and one for fitting it."""
    return sum(stage.steps for stage in tune_plan(kits, grooves, learned, model_grooves, schedule,
                                                  trigger_kits))


def tune(preset: Preset, kits: Sequence, grooves: Sequence[Path] | None = None,
         progress: Callable[[], None] | None = None, learned: bool = True,
         model_grooves: Sequence[Path] | None = None, rooms: float = 0.0,
         schedule: Schedule | None = None, base: Preset | None = None,
         trigger_kits: Sequence = ()) -> Preset:
    """Trigger settings tuned on grooves (default: the shipped training split) rendered with kits,
    then with `learned` the learned trigger trained on model_grooves (default: the shipped ones).
    A share `rooms` (0..1) of both sets of renders are recordings in rooms (rtdrums.training.rooms).
    `schedule` (default FULL) sets how much is rendered, and whether the learned trigger is
    fine-tuned from base's.

    With one kit the cross-talk margins are tuned too. With several, the preset is meant for kits
    it has not seen: the margins multiply a cross-talk measured on the training kits, and margins
    tuned to those (4-8) silenced the snare of left-out kits (F 0.33-0.45 on validation grooves,
    0.45-0.85 at the base's 2), so they keep the base's.

    `trigger_kits` (e.g. rtdrums.training.soundfont_kits) play half of the learned trigger's
    grooves (model_kit_order) though the preset has no templates of theirs: a user's kit is never
    in the templates either, and a trigger trained only on kits that are learns their
    activations, not those of a kit that is not. They stay out of the threshold detector's
    tuning, which takes each drum's worst kit: tuned with them it gave the fixture kit's soundcheck
    preset hi-hat F 0.72 instead of 0.79 (tests/test_train.py), and the learned trigger does not
    use those settings. What was tuned on and the onset F-measure reached there go into the
    provenance.
    """
    from ..engine import Engine
    from .trigger_tuning import render_takes, tune_triggers

    schedule = schedule or FULL
    tuned = preset
    if tunes_detector(learned, schedule):
        grooves = tuning_grooves(grooves)
        engine = Engine(with_adaptation(preset, False))
        takes = render_takes(engine, kits, grooves, schedule.tune_seconds, progress=progress, rooms=rooms)
        tuned, scores = tune_triggers(preset, takes, engine, progress, margins=len(kits) == 1)
        record = {"kits": [k.name for k in kits], "grooves": [Path(g).name for g in grooves],
                  "seconds_per_groove": schedule.tune_seconds, "rooms": rooms,
                  "f_measure_50ms": {d.name: round(s.f, 3) for d, s in zip(preset.drums, scores)},
                  "median_latency_ms": {d.name: round(s.latency_ms, 1) for d, s in zip(preset.drums, scores)}}
        tuned = replace(tuned, provenance={**tuned.provenance, "trigger_tuning": record})
    if not learned:
        return tuned
    from .onset_training import TAIL_S, train_onset_model
    start = base if schedule.fine_tune and base is not None and base.onset_model is not None else None
    model = learned_grooves(model_grooves, schedule)
    return train_onset_model(tuned, model_kit_order(kits, trigger_kits, len(model)), model,
                             schedule.model_seconds, progress=progress, rooms=rooms, start=start,
                             networks=schedule.fine_tune_networks,
                             epochs=schedule.fine_tune_epochs, rate=schedule.fine_tune_rate,
                             take_s=schedule.model_seconds + TAIL_S if schedule.cut_takes else None)


TRIGGER_KIT_SHARE = 0.5     # of the learned trigger's grooves played by trigger kits


def model_kit_order(kits: Sequence, trigger_kits: Sequence, n: int,
                    share: float = TRIGGER_KIT_SHARE) -> list:
    """The kit that plays each of the learned trigger's n grooves: the kits in turn, or with
    trigger kits, pairs of grooves by one kit, a `share` of the pairs (spread evenly) by a
    trigger kit, each kit in turn. In pairs because `rooms` 0.5 varies every other take: each
    kit gets dry and room takes alike."""
    from .rooms import varied

    if not trigger_kits:
        return list(kits)
    order, used = [], [0, 0]
    for p in range(-(-n // 2)):
        which = int(varied(p, share))
        group = (kits, trigger_kits)[which]
        order += [group[used[which] % len(group)]] * 2
        used[which] += 1
    return order[:n]
