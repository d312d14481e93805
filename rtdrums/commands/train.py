"""Learn a preset's templates from isolated hits of your own kit.

Sources (repeat them to pool several):
  --kit DIR    a Hydrogen drumkit folder (drumkit.xml + samples); instruments are mapped to
               kick / snare / closed, open, pedal hi-hat / tom / cymbal by name or MIDI note
  --hits DIR   a folder of recordings in sub-folders named kick/, snare/, hihat/ (closed),
               hihat_open/, hihat_pedal/, tom/, cymbal/, other/; a file may hold one or many hits,
               and a session of `rtdrums live --record DIR/kick` counts with its input
Each source gets its own templates (--components per source), so a preset from several kits has
templates that fit each of them. Writes DIR/preset.toml and DIR/templates.npz. Solver and other
settings come from --base (default: the shipped default preset, if present).

Each drum's trigger settings (relative threshold, cross-talk margin, lookback) are then tuned on
grooves rendered with the sources: a kit plays them with its samples, a folder with its recorded
hits (split one by one, the quietest playing the softest notes). By default the grooves are the
Groove MIDI Dataset training grooves shipped with rtdrums, 30 s each (--tune-grooves for others;
--no-tune keeps the settings of --base).

Then a learned trigger is trained on the sources (--trigger): a small network that reads each
frame's spectrum and activations and triggers as soon as a hit shows, 2-5 ms after it instead of
the threshold detector's 6-11 ms. By default it starts from the --base preset's learned trigger
(each network of its ensemble) and is fine-tuned on 48 shipped grooves (5 s each) played by the
sources, and the threshold
detector, which a learned trigger replaces, keeps the base's settings: seconds, not minutes
(docs/training-speed.md). --full trains as the shipped preset is trained: the detector tuned,
the learned trigger trained from scratch on 240 grooves (15 s each, each groove with one source
in turn), about four minutes; so does a --base without a learned trigger (e.g. --base none).

--trigger-kit DIR (repeatable; a kit folder or a folder of them, e.g. the General MIDI soundfont
kits of `python -m rtdrums.training.soundfont_kits`) adds kits to the learned trigger's renders
only: their templates are not in the preset, as a user's kit is not (docs/soundfont-kits.md).

With --rooms FRACTION (e.g. 0.5; default 0, all dry) that share of the tuning and learned-trigger renders are
recordings in simulated rooms, with microphones, EQ, compression, clipping, level changes, noise
and other sounds (rtdrums.training.rooms; each take its own seeded variation).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import UserError
from ..paths import ensure_writable_dir
from ..preset import load_preset, resolve_preset, save_preset
from ..dsp.stft import StftSettings
from ..training.kits import load_kit
from ..training.render import groove_files
from ..training.rooms import DEFAULT_ROOMS, check_fraction
from ..progress import Progress
from ..training.soundfont_kits import kit_folders
from ..training.train import (CATEGORIES, Hits, hits_from_folder, kit_from_hits, kit_hit_sets,
                     pooled, schedule_for, train, training_plan, tunes_detector)

help = "learn templates from a Hydrogen kit or a folder of labelled hits"


def add_arguments(p):
    p.add_argument("--kit", action="append", default=[], metavar="DIR", help="Hydrogen drumkit folder")
    p.add_argument("--hits", action="append", default=[], metavar="DIR", help="folder of labelled hits")
    p.add_argument("--trigger-kit", action="append", default=[], metavar="DIR",
                   help="kit folder, or folder of kit folders, that only the learned trigger's "
                        "renders use (no templates)")
    p.add_argument("--out", required=True, metavar="PRESET_DIR", help="preset folder to write")
    p.add_argument("--name", help="preset name (default: the --out folder name)")
    p.add_argument("--sample-rate", type=int, help="rate to train at (default: that of --base, 48000)")
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="frame hop (default: that of --base, 128 at 48 kHz; 64 halves the trigger's wait)")
    p.add_argument("--base", default="default",
                   help="preset whose settings to keep (default: %(default)s; 'none' for built-in defaults)")
    p.add_argument("--no-tune", action="store_true", help="keep the trigger settings of --base")
    p.add_argument("--trigger", choices=("learned", "threshold"), default="learned",
                   help="learned (default): also train the onset network on the sources; "
                        "threshold: tune the threshold detector only")
    p.add_argument("--tune-grooves", type=Path, nargs="+", metavar="FILE_OR_DIR",
                   help="MIDI grooves to tune triggers on (default: the shipped training split)")
    p.add_argument("--model-grooves", type=Path, nargs="+", metavar="FILE_OR_DIR",
                   help="MIDI grooves to train the learned trigger on, first 15 s of each "
                        "(default: the 240 shipped for it)")
    p.add_argument("--full", action="store_true",
                   help="the long training: tune the threshold detector too and train the learned "
                        "trigger from scratch on all its grooves (minutes; the default fine-tunes the "
                        "base's learned trigger in seconds)")
    p.add_argument("--rooms", type=float, default=DEFAULT_ROOMS, metavar="FRACTION",
                   help="share of the tuning renders recorded in simulated rooms, 0..1 "
                        "(default: %(default)s; 0: all dry)")
    p.add_argument("--scan-ms", type=float, metavar="MS",
                   help="delay from a trigger decision to its note-on (default: that of --base; "
                        "the shipped preset's is 0: the note leaves with the decision)")
    p.add_argument("--groove", type=Path, metavar="TAKE", help="learn from a recorded groove with its --score "
                   "(score-informed templates; docs/score-informed.md)")
    p.add_argument("--score", type=Path, metavar="MIDI", help="the groove's drum notes (GM)")
    p.add_argument("--score-offset", type=float, default=0.0, metavar="MS", help="move the score by this")
    p.add_argument("--score-tolerance", type=float, default=50.0, metavar="MS",
                   help="search the score's offset within +-this (default: %(default)s)")
    p.add_argument("--autoencoder", choices=("start", "solver"),
                   help="also train an encoder of the activations (docs/autoencoder.md) and solve each "
                        "frame from its output (start) or with it (solver: 2 KL updates after it)")
    p.add_argument("--components", default="", metavar="CAT=N,...",
                   help=f"templates per category and source, e.g. kick=4,snare=4 (categories: {', '.join(CATEGORIES)})")


def hop_settings(settings: StftSettings, hop: int) -> StftSettings:
    """settings at the hop given on the command line, or a one-line error."""
    try:
        if hop < 1:
            raise ValueError("a hop is at least one sample (64 halves the default 128)")
        out = settings.with_hop(hop)
        out.validate()
    except ValueError as e:
        raise UserError(f"--hop {hop}: {e}") from None
    return out


def parse_components(text: str) -> dict[str, int]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        if name not in CATEGORIES or not value.isdigit():
            raise UserError(f"--components: {item!r} is not CATEGORY=N with a category from {', '.join(CATEGORIES)}")
        out[name] = int(value)
    return out


MIN_HITS = 4                                  # per drum, for templates and a velocity range


def soundcheck_advice(hits: Hits) -> list[str]:
    """What a folder of recorded hits lacks for a good preset (empty if nothing)."""
    out = []
    for category, label in (("kick", "kick"), ("snare", "snare"), ("hihat_closed", "closed hi-hat")):
        items = hits.get(category, [])
        if 0 < len(items) < MIN_HITS:
            out.append(f"only {len(items)} {label} hit(s) found: record {MIN_HITS} or more, soft to loud")
        elif len(items) >= MIN_HITS and min(v for _, v in items) == 1.0:
            out.append(f"all {label} hits are within 3 dB of each other: record soft strokes too, "
                       "or soft notes will trigger with wrong velocities")
    if all(hits.get(c) for c in ("kick", "snare", "hihat_closed")) and not hits.get("tom"):
        out.append("no tom hits: toms you play may trigger the snare (a tom/ take of a few strokes per "
                   "tom teaches the learned trigger to tell them apart)")
    return out


def run(args) -> int:
    if args.groove or args.score:
        from ..training.groove import run_groove
        return run_groove(args)
    if not args.kit and not args.hits:
        raise UserError("give at least one --kit DIR or --hits DIR to learn from")
    rooms = check_fraction(args.rooms)
    if args.trigger_kit and (args.no_tune or args.trigger != "learned"):
        raise UserError("--trigger-kit kits only train the learned trigger: leave out --no-tune and "
                        "--trigger threshold")
    if args.scan_ms is not None and not 0 <= args.scan_ms < 1000:
        raise UserError(f"--scan-ms {args.scan_ms}: give a delay from 0 to 1000 ms")
    base = None
    if args.base != "none":
        try:
            base = load_preset(args.base)
        except UserError:
            if args.base != "default":
                raise
    out = Path(args.out)
    ensure_writable_dir(out)
    sample_rate = args.sample_rate or (base.stft.sample_rate if base else 48000)
    settings = (base.stft if base else StftSettings()).scaled_to(sample_rate)
    if args.hop is not None:
        settings = hop_settings(settings, args.hop)
    t0 = time.perf_counter()
    kits, hit_sets, sources = kit_hit_sets(args.kit, settings)   # of their samples only what training reads
    trigger_kits = [load_kit(f) for d in args.trigger_kit for f in kit_folders(d)]
    tune_kits = list(kits)                    # folders of hits join as kits of their hits
    advice: list[str] = []
    for folder in args.hits:                  # recorded hits are rendered too, whole
        found, provenance = hits_from_folder(folder, sample_rate)
        sources.append(provenance)
        hit_sets.append(found)
        tune_kits.append(kit_from_hits(found, f"{Path(folder).resolve().name} (recorded hits)", sample_rate))
        advice += [f"note: {folder}: {a}" for a in soundcheck_advice(found)]
    hits = pooled(hit_sets)
    name = args.name or out.name
    provenance = {"sources": sources, "sample_rate": sample_rate,
                  "hits": {c: len(v) for c, v in hits.items()},
                  "base": str(resolve_preset(args.base)) if base else "built-in defaults"}
    components = parse_components(args.components)
    render_kits = list(tune_kits)
    tune_kits = [] if args.no_tune else tune_kits
    learned = args.trigger == "learned"
    grooves = groove_files(args.tune_grooves, "train") if tune_kits else None
    model = groove_files(args.model_grooves, "model") if tune_kits and learned else None
    schedule = schedule_for(base, args.full)
    if args.tune_grooves and tune_kits and not tunes_detector(learned, schedule):
        advice.append("note: --tune-grooves are not used: the learned trigger replaces the threshold "
                      "detector (add --full to tune it too, or use --trigger threshold)")
    bar, began = None, time.monotonic()

    def step():                               # shown from the first step: a bad input fails before
        nonlocal bar
        if bar is None:
            bar = Progress(training_plan(hit_sets, tune_kits, grooves, learned, model, schedule,
                                         trigger_kits, bool(args.autoencoder)), "training", started=began)
        bar()

    try:
        preset = train(hit_sets, provenance, name, settings=settings, components=components, base=base,
                       tune_kits=tune_kits, tune_grooves=grooves, progress=step, learned=learned,
                       model_grooves=model, rooms=rooms, scan_ms=args.scan_ms, schedule=schedule,
                       trigger_kits=trigger_kits, autoencoder=args.autoencoder, autoencoder_kits=render_kits)
    finally:
        if bar is not None:
            bar.close()
    save_preset(preset, out)
    counts = ", ".join(f"{c} {len(v)}" for c, v in hits.items())
    print(f"learnt {preset.W.shape[1]} templates from {sum(len(v) for v in hits.values())} hits "
          f"({counts}) in {time.perf_counter() - t0:.1f} s")
    for d in preset.drums:
        print(f"  {d.name}: {d.components} templates, notes {sorted(set(d.notes))}, reference {d.reference:.4g}")
    print(f"  residual: {preset.residual_components} templates ({', '.join(sorted(set(preset.residual_labels))) or 'none'})")
    tuning = preset.provenance.get("trigger_tuning")
    if tuning:
        f = ", ".join(f"{d} {v:.2f}" for d, v in tuning["f_measure_50ms"].items())
        print(f"  triggers tuned on {len(tuning['grooves'])} grooves x {len(tuning['kits'])} kit(s): F {f}")
    if preset.onset_model is not None:
        m = preset.onset_model
        thr = ", ".join(f"{d} {t:.2f}" for d, t in zip(preset.drum_names, m.threshold))
        how = preset.provenance.get("learned_trigger", {})
        start = how.get("fine_tuned_from", "")
        how_text = "from scratch" if start.startswith("none") else f"fine-tuned from {start!r}"
        nets = f"{len(m.networks)} networks of " if m.members else ""
        print(f"  learned trigger: {nets}{m.n_features} features, {m.b1.shape[0]} hidden units, "
              f"trained on {how.get('grooves', len(model))} grooves ({how_text}); thresholds {thr}")
    print(f"wrote {out / 'preset.toml'} and {out / 'templates.npz'}")
    for line in advice:
        print(line, file=sys.stderr)
    return 0
