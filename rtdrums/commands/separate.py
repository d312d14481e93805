"""Separate a drum recording into kick, snare, hi-hat and residual stems plus MIDI triggers.

Runs the same streaming engine as `rtdrums live`, block by block, and writes into --out:
  kick.wav snare.wav hihat.wav residual.wav   stems aligned to the input (stem latency removed)
  triggers.csv                               onset_s,emitted_s,instrument,note,velocity
  triggers.mid                               the triggers as a MIDI file (GM drum channel)
emitted_s is when a live run with the same settings and block size would have sent the note-on.
With --config FILE (the live settings file) also, as live plays them:
  sampler.wav mix.wav                        with a [sampler] table (docs/sampler.md)
  kick-fx.wav ... mix-fx.wav                 with an [effects] table: each output with a chain,
                                             after it (docs/effects.md)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import UserError
from ..offline import DEFAULT_BLOCK
from ..dsp.adapt import add_switches
from ..separation_job import run_separation

help = "separate a drum recording into stems and MIDI triggers"


def add_arguments(p):
    p.add_argument("input", nargs="+", help="audio file (WAV, FLAC, OGG, AIFF; any rate, any channels: mixed "
                   "to mono); several files or folders: each into OUT/<name>/, over the cores (--jobs)")
    p.add_argument("--jobs", type=int, metavar="N", help="files separated at once (default: one per core)")
    p.add_argument("--out", required=True, help="output folder (created if needed)")
    p.add_argument("--preset", default="default", help="preset name or folder (default: %(default)s)")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK,
                   help="audio block size in samples, as live (default: %(default)s); sets emitted_s")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--config", metavar="FILE", help="live settings file (TOML): its [sampler] plays the "
                   "triggers into sampler.wav and mix.wav (docs/sampler.md), its [effects] chains write "
                   "<output>-fx.wav (docs/effects.md), as live plays them")
    p.add_argument("--score", type=Path, metavar="MIDI", help="the take's drum notes (GM): score-informed "
                   "separation, triggers from the score (docs/score-informed.md)")
    p.add_argument("--score-offset", type=float, default=0.0, metavar="MS", help="move the score by this")
    p.add_argument("--score-tolerance", type=float, default=50.0, metavar="MS",
                   help="search the score's offset within +-this (default: %(default)s; 0: as given)")
    add_switches(p)


def run(args) -> int:
    if args.block < 1:
        raise UserError(f"--block must be a positive number of samples, got {args.block}")
    t0 = time.perf_counter()
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if len(args.input) > 1 or Path(args.input[0]).is_dir():
        return _run_many(args)
    args.input = args.input[0]
    if args.score is not None and args.config:
        raise UserError("--config (sampler, effects) and --score do not combine: leave out one of them")
    if args.score is not None:
        from ..score_informed import run_informed_separation
        summary = run_informed_separation(Path(args.input), args.score, Path(args.out), args.preset,
                                          args.score_offset, args.score_tolerance)
        if not args.quiet:
            print(f"{summary}\n({time.perf_counter() - t0:.1f} s)")
        return 0
    sampler, effects = _live_settings(args)
    result = run_separation(Path(args.input), Path(args.out), args.preset, args.block,
                            progress=not args.quiet, adapt=args.adapt, save_adapted=args.save_adapted,
                            sampler=sampler, effects=effects)
    if not args.quiet:
        print(result.summary(time.perf_counter() - t0), file=sys.stdout)
    return 0


def _live_settings(args):
    """(sampler, effects) of --config, or (None, None)."""
    if not args.config:
        return None, None
    from ..host.config import load_toml
    settings = load_toml(args.config)
    sampler, effects = settings.get("sampler"), settings.get("effects")
    if sampler is None and not effects:
        raise UserError(f"{args.config} has no [sampler] or [effects] table: add one "
                        f"(docs/sampler.md, docs/effects.md) or leave out --config")
    return sampler, effects


def _run_many(args) -> int:
    """Several files or a folder (rtdrums.batch_separation)."""
    from ..batch_separation import default_jobs, input_files, separate_files, summary

    if args.score is not None or args.save_adapted is not None:
        raise UserError("--score and --save-adapted take one input file: give one file, or leave them out")
    files = input_files([Path(p) for p in args.input])
    sampler, effects = _live_settings(args)
    jobs = min(args.jobs or default_jobs(), len(files))
    results, elapsed = separate_files(files, Path(args.out), args.preset, args.block, jobs,
                                      progress=not args.quiet, adapt=args.adapt, sampler=sampler, effects=effects)
    if not args.quiet:
        print(summary(results, elapsed, jobs))
    return 0
