"""Measure onset accuracy, trigger latency, velocity and stem quality, with baselines.

On a Hydrogen kit: grooves (default: the shipped Groove MIDI Dataset test split) are rendered
into mixtures with exact per-drum stems, the engine runs block by block exactly as live, and the
baselines run on the same mixtures (offline NMF with the same templates, masks from the true
stems, libnmfd's NMFD drum demo, a band-energy trigger).

  rtdrums eval --kit /usr/share/hydrogen/data/drumkits/ForzeeStereo --out eval/forzee
  rtdrums eval --kit KIT --out OUT --calibrate             # templates from the kit's own samples
  rtdrums eval --kit KIT --out OUT --train-kits KIT_A KIT_B  # a preset trained on other kits
  rtdrums eval --kit KIT --out OUT --rooms     # renders as recordings in simulated rooms

On a real recording with onset annotations (`time label` lines; onset scores and latency only):

  rtdrums eval --audio take.wav --annotations take.txt --labels KD=kick,SD=snare,HH=hihat --out OUT

Writes results.md, results.json, activations.png and latency.png into --out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..dsp.adapt import with_adaptation
from ..errors import UserError
from ..paths import ensure_writable_dir

help = "measure onsets, latency, velocity and stem quality against baselines"


def add_arguments(p) -> None:
    src = p.add_argument_group("what to evaluate")
    src.add_argument("--kit", type=Path, help="Hydrogen kit folder to render mixtures with")
    src.add_argument("--audio", type=Path, help="a recording to evaluate (with --annotations)")
    src.add_argument("--annotations", type=Path, help="onset file of --audio: `time label` per line")
    src.add_argument("--labels", default=None,
                     help="label map of --annotations (default KD=kick,SD=snare,HH=hihat)")
    tpl = p.add_mutually_exclusive_group()
    tpl.add_argument("--preset", default=None,
                     help="preset name or folder (generic protocol; default: the shipped 'default')")
    tpl.add_argument("--calibrate", action="store_true",
                     help="train templates from the kit's own samples first, as `rtdrums train --kit` "
                          "does (calibrated protocol)")
    tpl.add_argument("--train-kits", type=Path, nargs="+", metavar="KIT",
                     help="train a preset on these kits first (e.g. all kits but the evaluated one)")
    p.add_argument("--full", action="store_true",
                   help="with --calibrate: train as `rtdrums train --full` (the long schedule)")
    p.add_argument("--out", type=Path, required=True, help="folder for results.md/json and figures")
    p.add_argument("--grooves", type=Path, nargs="+", metavar="FILE_OR_DIR",
                   help="MIDI grooves or folders of them (default: the shipped test split)")
    p.add_argument("--rooms", action="store_true",
                   help="evaluate on renders recorded in simulated rooms (rtdrums.training.rooms; seeds "
                        "disjoint from training's)")
    p.add_argument("--seconds", type=float, default=30.0, help="first seconds of each groove (default 30)")
    p.add_argument("--sample-rate", type=int, default=48000, help="engine sample rate (default 48000)")
    p.add_argument("--block", type=int, default=128, help="audio block size in samples (default 128)")
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="frame hop of the preset --calibrate or --train-kits trains (default: the "
                        "shipped preset's, 128)")
    from ..dsp.adapt import add_switches
    add_switches(p, save=False)
    p.add_argument("--baselines", default="all",
                   help="comma-separated baselines to run (nmf_offline, oracle_masks, libnmfd_nmfd, "
                        "band_trigger), 'all' (default) or 'none'")


def _baselines(text: str) -> tuple[str, ...]:
    from ..evaluation.run import BASELINES

    if text.strip().lower() == "none":
        return ()
    if text.strip().lower() == "all":
        return BASELINES
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in BASELINES]
    if bad:
        raise UserError(f"unknown baseline {bad[0]!r}: choose from {', '.join(BASELINES)}, 'all' or 'none'")
    return names


def _check(args) -> None:
    if (args.kit is None) == (args.audio is None):
        raise UserError("give either --kit KIT_DIR or --audio FILE --annotations FILE")
    if args.audio is not None and args.annotations is None:
        raise UserError("--audio needs --annotations FILE (one `time label` per line)")
    if args.audio is not None and args.rooms:
        raise UserError("--rooms varies rendered grooves: use it with --kit, not --audio")
    if args.audio is not None and (args.calibrate or args.train_kits):
        raise UserError("--calibrate and --train-kits need --kit; with --audio use --preset")
    if args.audio is None and (args.annotations is not None or args.labels):
        raise UserError("--annotations and --labels go with --audio")
    if args.hop is not None and not (args.calibrate or args.train_kits):
        raise UserError("--hop goes with --calibrate or --train-kits: a preset runs at the hop it was "
                        "trained at (train one with `rtdrums train --hop`)")
    if not 1 <= args.block <= 8192:
        raise UserError(f"--block must be between 1 and 8192 samples, got {args.block}")
    if not args.seconds > 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    if args.full and not args.calibrate:
        raise UserError("--full sets how --calibrate trains: add --calibrate, or leave --full out")
    if args.kit is not None and not args.kit.is_dir():
        raise UserError(f"{args.kit}: no such kit folder (a Hydrogen kit has a drumkit.xml)")
    ensure_writable_dir(args.out)            # before minutes of work, not after


def _training() -> None:
    """Say that minutes of training start: only once every argument has been checked."""
    print("training templates from the kit samples ...", file=sys.stderr)


def _preset(args):
    from ..evaluation import protocol

    base = protocol.base_preset()
    if args.hop is not None:
        from dataclasses import replace

        from .train import hop_settings

        if base is None:
            raise UserError("--hop needs the shipped 'default' preset as the base of the one it trains")
        base = replace(base, stft=hop_settings(base.stft, args.hop))
    if args.calibrate:
        _training()
        return protocol.calibrated(args.kit, args.sample_rate, base, args.full), "calibrated"
    if args.train_kits:
        for k in args.train_kits:
            if not k.is_dir():
                raise UserError(f"{k}: no such kit folder")
        if args.kit and any(k.resolve() == args.kit.resolve() for k in args.train_kits):
            raise UserError("--train-kits includes the evaluated kit: leave it out for a generic score")
        _training()
        return protocol.trained_on(args.train_kits, args.sample_rate, "trained-on-other-kits", base), \
            "generic (trained on other kits)"
    if args.preset is None and base is None:
        raise UserError("no shipped 'default' preset: give --preset, --calibrate or --train-kits")
    return protocol.generic(args.preset or "default"), "generic"


def run(args) -> int:
    from tqdm import tqdm

    from ..evaluation import report, run as ev
    from ..training.render import groove_files

    _check(args)
    if args.audio is not None:
        return _run_audio(args)
    grooves = groove_files(args.grooves, "test")
    methods = _baselines(args.baselines)
    preset, protocol_name = _preset(args)
    preset = with_adaptation(preset, args.adapt)
    total = len(grooves) * ev.steps_per_groove(methods)
    with tqdm(total=total, desc="eval", unit="step") as bar:
        def step(name):
            bar.set_postfix_str(name)
            bar.update(1)

        results, figure = ev.evaluate_kit(args.kit, preset, grooves, args.seconds, args.sample_rate,
                                          args.block, methods, progress=step, rooms=args.rooms)
    results["protocol"] = protocol_name
    if results["kit_in_training"] and not args.calibrate:
        print(f"note: preset {preset.name} was trained on {results['kit']}: this is not a score on "
              "an unseen kit (use --train-kits with other kits for that)", file=sys.stderr)
    paths = report.write(results, figure, args.out)
    print(report.method_table(results))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _run_audio(args) -> int:
    from ..audio import read_audio, to_mono
    from ..evaluation import annotations, report, run as ev

    labels = annotations.parse_label_map(args.labels or annotations.DEFAULT_LABELS)
    data, rate = read_audio(args.audio)
    truth = annotations.read_annotations(args.annotations, labels)
    preset, protocol_name = _preset(args)
    preset = with_adaptation(preset, args.adapt)
    results, figure = ev.evaluate_audio(to_mono(data), rate, truth, preset, args.block, args.audio.name)
    results["protocol"] = protocol_name
    paths = report.write(results, figure, args.out)
    print(report.method_table(results))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
