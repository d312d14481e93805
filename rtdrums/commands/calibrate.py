"""Calibrate a preset to your kit: record each drum, train, check.

  rtdrums calibrate --input-device Scarlett --input-channels 1 --out ~/presets/mykit
guides you drum by drum: kick, snare, closed, open and pedal hi-hat, then (optional) toms,
cymbals and side-stick. For each it says what to play, records it, shows the strokes found with
their levels and warns about clipping, no signal, too quiet, too few soft strokes, another drum
ringing or a drum that sounds like another. Keys while recording: Enter = done, r = redo,
s = skip, q = quit. Takes are written into PRESET_DIR/takes/<drum>/ as they are played: Ctrl-C
keeps them, and --resume continues with the first drum without a take. Then it trains as
`rtdrums train --hits PRESET_DIR/takes` does (a drum with fewer than 4 strokes is left out),
writes the preset, PRESET_DIR/calibration.md (strokes per drum, cross-talk matrix, PNGs), and
ends with a check: play a groove and watch the triggers.

  rtdrums calibrate --takes DIR --out PRESET_DIR
trains from takes recorded before (no audio device). When stdin is not a terminal, answers are
read as lines (empty = go on, redo, skip, quit), so a script can drive a calibration.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from ..training.calibration import fmt_db
from ..errors import UserError

help = "record each drum of your kit, train a preset from it, check it live"


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, metavar="PRESET_DIR", help="preset folder to write")
    p.add_argument("--takes", type=Path, metavar="DIR",
                   help="train from takes recorded before (kick/, snare/, hihat/ ...); no device")
    p.add_argument("--resume", action="store_true",
                   help="keep PRESET_DIR/takes and continue with the first drum without a take")
    g = p.add_argument_group("audio")
    g.add_argument("-i", "--input-device", help="index or part of the name (rtdrums devices)")
    g.add_argument("--input-channels", default="1", metavar="CH",
                   help="input channel of the microphone, or a stereo pair mixed to mono: 1 or 1,2")
    g.add_argument("--host-api", help="restrict devices to one host API, e.g. jack, alsa")
    g.add_argument("--rate", type=int, help="sample rate in Hz (default 48000)")
    g.add_argument("--block", type=int, help="block size in samples (default 128)")
    g.add_argument("--client-name", default="rtdrums", help="JACK client name (default rtdrums)")
    p.add_argument("--preset", default="default",
                   help="preset whose triggers judge the takes (wrong drum, ringing; default: "
                        "the shipped one)")
    p.add_argument("--take-seconds", type=float, default=0.0, metavar="S",
                   help="end each take after S seconds (default 0: when you press Enter)")
    p.add_argument("--check-seconds", type=float, default=20.0, metavar="S",
                   help="length of the closing check (default %(default)s; 0: no check)")
    p.add_argument("--view", choices=["auto", "full", "plain"], default="auto",
                   help="screen (default auto: full on a terminal, else a line per stroke)")
    gr = p.add_argument_group("by playing a groove")
    gr.add_argument("--groove", nargs="?", const="default", metavar="PATTERN.mid",
                    help="play along to a pattern with a click (default: the shipped one)")
    gr.add_argument("--bpm", type=float, help="tempo of the pattern (default: the pattern's own)")
    gr.add_argument("--count-in", type=int, default=4, metavar="BEATS", help="beats of count-in (default 4)")
    gr.add_argument("-o", "--output-device", help="device of the click (default: the default output of "
                    "the input device's host API)")
    gr.add_argument("--click-channels", default="1,2", metavar="CH",
                    help="output channels of the click, counted from 1 (default 1,2)")
    gr.add_argument("--click-level", type=float, default=-12.0, metavar="DB",
                    help="the accented click's peak in dBFS (default -12)")
    t = p.add_argument_group("training (as rtdrums train)")
    t.add_argument("--trigger", choices=("learned", "threshold"),
                   help="learned (default) or threshold: tune the threshold detector only (faster; "
                        "the default with --groove, docs/calibration.md)")
    t.add_argument("--tune-grooves", type=Path, nargs="+", metavar="FILE_OR_DIR",
                   help="grooves to tune the triggers on (default: the shipped training split)")
    t.add_argument("--model-grooves", type=Path, nargs="+", metavar="FILE_OR_DIR",
                   help="grooves to train the learned trigger on (default: the shipped ones)")


def _live_config(args):
    from ..host.config import resolve
    ns = argparse.Namespace(preset=args.preset, rate=args.rate, block=args.block,
                            host_api=args.host_api, client_name=args.client_name,
                            input_device=args.input_device, input_channels=args.input_channels,
                            view=args.view)
    cfg = resolve(ns)
    # PortAudio throughout: the device checks, the takes and the groove's click share its client
    cfg.midi, cfg.route, cfg.backend = False, {}, "portaudio"
    return cfg


def _say(text: str = "") -> None:
    print(text, flush=True)


def _summary(rep) -> None:
    levels = (f" ({fmt_db(min(rep.levels))} to {fmt_db(max(rep.levels))})" if rep.levels else "")
    _say(f"{rep.step.label}: {rep.strokes} strokes{levels}")
    for w in rep.warnings:
        _say(f"  warning: {w}")
    if rep.reason():
        _say(f"  {rep.reason()}")


def record(args, takes: Path, cfg) -> bool:
    """The guided recording; False if the player quit (takes kept)."""
    try:
        return _record(args, takes, cfg)
    except KeyboardInterrupt:                  # Ctrl-C at a prompt (during a take the session stops)
        _say(f"\nstopped (Ctrl-C); the takes so far are kept in {takes}")
        return False


def _record(args, takes: Path, cfg) -> bool:
    from ..training.calibration import STEPS, analyse_folder, has_take, mark_skipped
    from ..host.calibrate import Answers, check_input, record_take

    device = check_input(cfg)
    _say(f"calibrating {takes.parent} from {device}, input channel "
         f"{'+'.join(map(str, cfg.input_channels))}, at {cfg.sample_rate} Hz")
    answers = Answers()
    steps = list(STEPS)
    i = next((k for k, s in enumerate(steps) if not has_take(takes, s)), len(steps))
    if i:
        _say(f"resuming: {', '.join(s.label for s in steps[:i])} already recorded in {takes}")
    channel = f"input channel {'+'.join(map(str, cfg.input_channels))}"
    while i < len(steps):
        step = steps[i]
        opt = " (optional)" if step.optional else ""
        prev = f", redo = record the {steps[i - 1].label} again" if i else ""
        answer = answers.ask(f"next: {step.prompt()}{opt}. Enter = start, skip{prev}, quit: ")
        if answer == "quit":
            return False
        if answer == "redo" and i:
            shutil.rmtree(takes / steps[i - 1].folder, ignore_errors=True)
            i -= 1
            continue
        if answer == "skip":
            mark_skipped(takes, step)
            _say(f"{step.label}: skipped")
            i += 1
            continue
        folder = takes / step.folder
        if folder.is_dir():                    # a redo after a skip or a quit
            shutil.rmtree(folder)
        action, session, reason = record_take(cfg, step, folder, answers, sys.stdout, args.take_seconds)
        if action == "quit":
            _say(f"stopped ({reason}); the takes so far are kept in {takes}")
            return False
        if action in ("redo", "skip"):
            shutil.rmtree(folder, ignore_errors=True)
            if action == "skip":
                mark_skipped(takes, step)
                _say(f"{step.label}: skipped")
                i += 1
            else:
                _say(f"{step.label}: take discarded, again")
            continue
        _summary(analyse_folder(step, folder, cfg.sample_rate, channel))
        i += 1
    return True


def train_takes(args, takes: Path, out: Path, sample_rate: int) -> tuple[list, object]:
    """Analyse every take, then train as `rtdrums train --hits` (only drums with enough strokes)."""
    from ..training.calibration import STEPS, analyse_folder, training_folder
    from . import train as train_cmd
    from ..preset import load_preset
    from ..training.train import _recordings

    reports = [analyse_folder(s, takes / s.folder, sample_rate) for s in STEPS
               if (takes / s.folder).is_dir() and _recordings(takes / s.folder)]
    for rep in reports:
        _summary(rep)
    work = out / ".calibrating"           # named after the preset: the recorded-hits kit's name
    hits = training_folder(takes, reports, work / out.name)
    argv = ["--hits", str(hits), "--out", str(out), "--name", out.name, "--trigger", args.trigger,
            "--sample-rate", str(sample_rate)]
    if args.tune_grooves:
        argv += ["--tune-grooves", *map(str, args.tune_grooves)]
    if args.model_grooves:
        argv += ["--model-grooves", *map(str, args.model_grooves)]
    parser = argparse.ArgumentParser(prog="rtdrums train")
    train_cmd.add_arguments(parser)
    _say("training: " + " ".join(argv))
    try:
        train_cmd.run(parser.parse_args(argv))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return reports, load_preset(out)


def run(args) -> int:
    from ..training.calibration import check_takes_folder, save_reports, write_report
    from ..paths import ensure_writable_dir

    if args.groove is not None:
        from . import calibrate_groove
        return calibrate_groove.run(args)
    args.trigger = args.trigger or "learned"
    t0 = time.perf_counter()
    out = Path(args.out).expanduser()
    if args.take_seconds < 0 or args.check_seconds < 0:
        raise UserError("--take-seconds and --check-seconds are 0 or more seconds")
    wall = {}
    if args.takes is not None:
        if args.resume:
            raise UserError("--takes trains from takes recorded before; --resume is for a recording "
                            "that was stopped: give one of them")
        takes = args.takes.expanduser()
        check_takes_folder(takes)
        ensure_writable_dir(out)
        sample_rate = args.rate or 48000
        cfg = None
    else:
        takes = out / "takes"
        if takes.is_dir() and any(takes.iterdir()) and not args.resume:
            raise UserError(f"{takes} already holds takes: add --resume to continue that "
                            "calibration, or choose another --out")
        cfg = _live_config(args)
        ensure_writable_dir(takes)
        sample_rate = cfg.sample_rate
        if not record(args, takes, cfg):
            _say(f"continue with: rtdrums calibrate --out {out} --resume (and the same audio options)")
            return 130
        wall["recording"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    reports, preset = train_takes(args, takes, out, sample_rate)
    wall["training"] = time.perf_counter() - t1
    save_reports(out, reports)
    path, notes = write_report(out, reports, preset, sample_rate, takes, wall)
    for n in notes:
        _say(f"note: {n}")
    _say(f"wrote {path}")
    if cfg is not None and args.check_seconds > 0:
        from ..host.calibrate import Answers, check_groove
        st = check_groove(cfg, out, args.check_seconds, Answers(), sys.stdout)
        hits = ", ".join(f"{d} {n}" for d, n in st["hits"].items())
        _say(f"check: {hits} triggers in {st['seconds']:.1f} s")
    _say(f"calibration done in {time.perf_counter() - t0:.0f} s: preset {out} "
         f"(use it with rtdrums live --preset {out})")
    return 0
