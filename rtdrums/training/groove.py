"""Calibration by playing a groove: `rtdrums train --groove take.wav --score take.mid`.

The score-informed factorisation (rtdrums.score_informed) of the take adapts the base preset's
templates to the kit that was played. Of each hit category (kick, snare, closed/open/pedal
hi-hat) the adapted templates that carry most of its activation are kept, as many as
`train --hits` learns (training.train.CATEGORIES); likewise of the base's residual templates. The hits
themselves are cut from the informed stems at the score's notes (each up to the drum's next
note, at most HIT_S), and from there the steps are those of `train --hits`: the preset is
built, its references and cross-talk are measured on those hits, and the triggers are tuned
(and the learned trigger trained) on grooves played with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..preset import Preset
from .render import GROOVE_NOTES
from .train import CATEGORIES, LOUD_DB, Hits, build_preset, calibrate, tune

HIT_S = 0.5
_HAT = {"closed": "hihat_closed", "open": "hihat_open", "pedal": "hihat_pedal"}


def note_category(drum: str, note: int) -> str:
    """The hit category of a scored note of a drum (a hi-hat by its articulation)."""
    if drum != "hihat":
        return drum
    art = GROOVE_NOTES[note].articulation if note in GROOVE_NOTES else "closed"
    return _HAT.get(art, "hihat_closed")


def groove_hits(result, min_hits: int = 1) -> Hits:
    """The informed stems cut at the score's notes, by category, with velocity01 from each hit's
    peak relative to its category's loudest (within LOUD_DB: 1), as train --hits does."""
    rate = result.settings.sample_rate
    names = result.names
    found: dict[str, list[np.ndarray]] = {}
    ev = result.events
    for d in range(len(names) - 1):
        onsets = np.sort(ev["onset"][ev["drum"] == d])
        notes = ev["note"][ev["drum"] == d][np.argsort(ev["onset"][ev["drum"] == d])]
        for k, (start, note) in enumerate(zip(onsets, notes)):
            end = min(start + int(HIT_S * rate), onsets[k + 1] if k + 1 < len(onsets) else len(result.stems))
            if end - start > result.settings.hop:
                found.setdefault(note_category(names[d], int(note)), []).append(
                    result.stems[start:end, d].astype(np.float32))
    hits: Hits = {}
    for category, items in found.items():
        if len(items) >= min_hits:
            peaks = np.array([np.max(np.abs(a)) for a in items])
            v = peaks / max(peaks.max(), 1e-12)
            v[v >= 10 ** (LOUD_DB / 20)] = 1.0
            hits[category] = [(a, float(x)) for a, x in zip(items, v)]
    return hits


def groove_templates(base: Preset, result) -> dict[str, np.ndarray]:
    """category -> the templates (K x R_c) with the most activation in the take, as many as
    train --hits learns per category: the drums' as adapted, the residual's (toms, cymbals:
    kept only as many as the take used, since a soundcheck preset has none) as in the base."""
    labels = [lab for d in base.drums for lab in (d.labels or (d.name,) * d.components)]
    labels += list(base.residual_labels or ("other",) * base.residual_components)
    energy = result.H.sum(axis=1)
    out = {}
    for category, (drum, _, count) in CATEGORIES.items():
        cols = np.array([r for r, lab in enumerate(labels) if lab == category])
        if not cols.size:
            continue
        used = cols[energy[cols] > 0]
        if used.size:
            keep = used[np.argsort(energy[used])[::-1][:count]]
            out[category] = (result.W if drum else base.W)[:, np.sort(keep)]
    return out


def train_groove(x: np.ndarray, rate: int, score_path: Path, base: Preset, name: str, provenance: dict,
                 offset_ms: float = 0.0, tolerance_ms: float = 50.0, tune_grooves=None, learned: bool = True,
                 model_grooves=None, rooms: float = 0.0, progress=None, tune_triggers: bool = True,
                 schedule=None):
    """A preset trained from a groove take and its score: (preset, hits, the informed result);
    `schedule` as for train (default: fast when base has a learned trigger to fine-tune)."""
    from ..score_informed import read_score, separate_informed
    from .train import FAST, FULL, kit_from_hits

    if rate != base.stft.sample_rate:
        raise UserError(f"the take is at {rate} Hz and the base preset at {base.stft.sample_rate} Hz: "
                        f"record at {base.stft.sample_rate} Hz or pass --sample-rate {rate} with a base of that rate")
    notes = read_score(score_path, base)
    result = separate_informed(x, rate, base, notes, offset_ms / 1000, tolerance_ms / 1000, path=score_path,
                               templates="preset")
    templates = groove_templates(base, result)
    hits = groove_hits(result)
    missing = [d for d in ("kick", "snare", "hihat") if not any(c.startswith(d) for c in hits)]
    if missing:
        raise UserError(f"{score_path}: no {', '.join(missing)} notes inside the take: the groove must play "
                        f"kick, snare and hi-hat")
    provenance = {**provenance, "groove": {"score_offset_ms": round(result.offset_s * 1000, 1),
                                           "notes_matched": round(result.matched, 3),
                                           "hits": {c: len(v) for c, v in hits.items()}}}
    preset = build_preset(templates, base.stft, name, provenance, base)
    preset.validate()
    preset = calibrate(preset, hits)
    if tune_triggers:
        kit = kit_from_hits(hits, f"{name} (groove hits)", rate)
        schedule = schedule or (FAST if base.onset_model is not None else FULL)
        preset = tune(preset, [kit], tune_grooves, progress, learned, model_grooves, rooms, schedule, base)
    return preset, hits, result


def run_groove(args) -> int:
    """`rtdrums train --groove WAV --score MIDI --out DIR` (the command's other options apply)."""
    import time

    from ..audio import read_audio, to_mono
    from ..paths import ensure_writable_dir
    from ..preset import load_preset, save_preset
    from ..training.render import groove_files
    from ..training.rooms import check_fraction
    from .train import FULL

    if not (args.groove and args.score):
        raise UserError("train from a groove needs both --groove TAKE.wav and --score TAKE.mid")
    if args.kit or args.hits:
        raise UserError("--groove trains from the take alone: leave out --kit and --hits")
    if args.base == "none":
        raise UserError("--groove adapts the templates of a base preset: give --base (default: default)")
    base = load_preset(args.base)
    rooms = check_fraction(args.rooms)
    out = Path(args.out)
    ensure_writable_dir(out)
    t0 = time.perf_counter()
    data, rate = read_audio(args.groove)
    learned = args.trigger == "learned"
    grooves = None if args.no_tune else groove_files(args.tune_grooves, "train")
    model = groove_files(args.model_grooves, "model") if learned and not args.no_tune else None
    provenance = {"sources": [{"groove": str(args.groove), "score": str(args.score)}], "sample_rate": rate,
                  "base": str(args.base)}
    preset, hits, result = train_groove(to_mono(data), rate, Path(args.score), base, args.name or out.name,
                                        provenance, args.score_offset, args.score_tolerance, grooves, learned,
                                        model, rooms, tune_triggers=not args.no_tune,
                                        schedule=FULL if args.full else None)
    save_preset(preset, out)
    counts = ", ".join(f"{c} {len(v)}" for c, v in hits.items())
    fit = f", {result.matched:.0%} of notes met an onset" if np.isfinite(result.matched) else ""
    print(f"learnt {preset.W.shape[1]} templates from the groove {args.groove} (score offset "
          f"{result.offset_s * 1000:+.1f} ms{fit}; hits: {counts}) in {time.perf_counter() - t0:.1f} s")
    print(f"wrote {out / 'preset.toml'} and {out / 'templates.npz'}")
    return 0

