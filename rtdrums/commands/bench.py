"""Measure the engine's speed: per-block processing time and real-time factor on one core.

Three settings: the low-latency default (48 kHz, hop 128, 128-sample blocks), the same at hop 64
(`rtdrums train --hop 64`: the trigger decides twice per block) and the standard NMF setting (2048/512 symmetric windows, 512-sample blocks). The input is the bundled demo groove
(a real drummer's groove rendered from a real kit), so the solver works as hard as on real drums. Numbers vary with the machine's load: quote
medians and ratios from one run. Each row also gives the time of each stage of a frame (the
engine's tick counter, Engine.profiling). --reference times the reference kernels beside the lean
ones, block by block in turn, so their ratio is measured under the same load; --channels N runs
engines in threads (rtdrums.channels). --solvers adds the per-frame solver comparison with
scikit-learn and libnmfd; --encoder times a preset's encoder start and encoder solver against its
KL solve (docs/autoencoder.md); --live adds the live host's callback and MIDI measurements (JACK).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from ..dsp.adapt import with_adaptation
from ..audio import read_audio, to_mono
from ..demo_data import DEMO_AUDIO
from ..dsp import ticks
from ..engine import STAGES, Engine
from ..events import EVENT_DTYPE
from ..preset import load_preset
from ..dsp.stft import StftSettings

help = "measure processing time per block and real-time factor"

SETTINGS = {
    "low-latency": (StftSettings(48000, 2048, 128, 256, 128), 128),
    "hop-64": (StftSettings(48000, 2048, 64, 256, 64), 128),      # two frames per block
    "standard": (StftSettings(48000, 2048, 512, 2048, 1024), 512),
}


def add_arguments(p):
    p.add_argument("--preset", default="default", help="preset to time (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio per setting (default: %(default)s)")
    p.add_argument("--solvers", action="store_true", help="also compare the frame solver with scikit-learn and libnmfd")
    p.add_argument("--reference", action="store_true",
                   help="also time the reference kernels (the engine before the lean ones) block by block beside the "
                        "lean ones, and print the ratios")
    p.add_argument("--channels", type=int, metavar="N",
                   help="also run 1 to N engines in threads at the default setting: the most that run in real time "
                        "with every block under half its budget, and the memory per engine")
    p.add_argument("--no-adapt-rows", action="store_true",
                   help="skip the rows with template adaptation on (its cost per block)")
    p.add_argument("--encoder", action="store_true", help="also time the frame solve from the preset's "
                   "encoder and the encoder as the solver against the KL solve (docs/autoencoder.md)")
    p.add_argument("--live", action="store_true", help="also measure the live host on a JACK dummy server")
    p.add_argument("--effects", metavar="FILE", help="also time the [effects] chains of this settings "
                   "file per block on the engine's outputs (docs/effects.md)")
    p.add_argument("--sampler", nargs="?", const="test kit", metavar="KIT",
                   help="also time the sampler's voices with this kit (default: the test kit)")


def bench_input(seconds: float) -> np.ndarray:
    """The bundled demo groove (48 kHz), repeated to the requested length."""
    data, rate = read_audio(DEMO_AUDIO)
    x = to_mono(data)
    return np.resize(x, int(seconds * rate))


def time_blocks(engines: list[Engine], x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds spent in each process_into call (the allocation-free live path), (engines, blocks),
    the engines taking turns block by block; and each block's seconds per stage (engines, blocks,
    STAGES) from the engines' tick counters."""
    stems = np.zeros((block, len(engines[0].stem_names)), np.float32)
    events = np.zeros(64, EVENT_DTYPE)
    for e in engines:
        e.warm()
        e.profiling = True
    per_tick = 1.0 / ticks.ticks_per_second()
    n = len(x) // block
    times = np.empty((len(engines), n))
    stages = np.empty((len(engines), n, len(STAGES)))
    for i in range(n):
        chunk = x[i * block:(i + 1) * block]
        for j, e in enumerate(engines):
            e.clear_stage_ticks()
            t = time.perf_counter()
            e.process_into(chunk, stems, events)
            times[j, i] = time.perf_counter() - t
            stages[j, i] = e.stage_ticks * per_tick
    return times, stages


def bench_engine(preset, seconds: float, adapt: tuple[bool, ...] = (False,),
                 reference: bool = False) -> list[dict]:
    """A row per setting, adaptation state (templates fixed, adapting) and kernels (lean, and
    with reference the reference kernels, timed in turn block by block)."""
    x = bench_input(seconds)
    rows = []
    for (name, (settings, block)), on in ((kv, on) for kv in SETTINGS.items() for on in adapt):
        p = with_adaptation(replace(preset, stft=settings), on)
        engines = [Engine(p, settings.sample_rate, max_block=block, lean=lean)
                   for lean in ((True, False) if reference else (True,))]
        times, stages = time_blocks(engines, x, block)
        budget = block / settings.sample_rate * 1e6
        for engine, t, st in zip(engines, times * 1e6, stages * 1e6):
            rows.append({"setting": name + (" +adapt" if on else "") + ("" if engine.params.lean else " ref"),
                         "n_fft": settings.n_fft, "hop": settings.hop, "block": block, "adapt": on,
                         "lean": engine.params.lean,
                         "templates": engine.tables.W.shape[1], "median_us": float(np.median(t)),
                         "p99_us": float(np.percentile(t, 99)), "max_us": float(t.max()),
                         "budget_us": budget, "rtf": float(t.sum() / (len(t) * budget)),
                         "iterations": engine.mean_iterations,
                         "stem_latency_ms": engine.stem_latency / settings.sample_rate * 1000,
                         "stages": {s: (float(np.median(st[:, k])), float(np.percentile(st[:, k], 99)))
                                    for k, s in enumerate(STAGES)}})
    return rows


def bench_solvers(preset, seconds: float) -> list[dict]:
    """Per-block time of the low-latency setting with each solver the preset's encoder allows:
    the KL solve from the previous frame, from the encoder, and the encoder refined (its own
    iterations, or 2). A preset without an encoder: a UserError naming `rtdrums train --autoencoder`."""
    from ..errors import UserError
    from ..training.autoencoder import REFINE, without_encoder

    if preset.autoencoder is None:
        raise UserError(f"preset {preset.name} has no encoder: train one with `rtdrums train --autoencoder solver`")
    kl = without_encoder(preset.solver)
    refine = preset.solver.iterations if preset.solver.method == "autoencoder" else REFINE
    solvers = {"kl, previous frame": kl, "kl, encoder start": replace(kl, start="encoder"),
               f"autoencoder + {refine} it": replace(kl, method="autoencoder", iterations=refine, tolerance=0.0)}
    settings, block = SETTINGS["low-latency"]
    x = bench_input(seconds)
    rows = []
    for name, solver in solvers.items():
        engine = Engine(replace(preset, stft=settings, solver=solver), settings.sample_rate, max_block=block)
        t = time_blocks([engine], x, block)[0][0] * 1e6
        rows.append({"solver": name, "median_us": float(np.median(t)), "p99_us": float(np.percentile(t, 99)),
                     "iterations": engine.mean_iterations})
    return rows


def print_stages(rows: list[dict]) -> None:
    """Each row's time per block of each stage: median / p99 in microseconds."""
    print(f"\ntime per block by stage, median/p99 in us (stages of the frames inside the block call):")
    print(f"{'setting':<23}" + "".join(f"{s:>15}" for s in STAGES))
    for r in rows:
        print(f"{r['setting']:<23}" + "".join(f"{m:>8.1f}/{p:<6.1f}" for m, p in r["stages"].values()))


def print_ratios(rows: list[dict]) -> None:
    """Reference over lean kernels, per setting, from the same run."""
    print("\nreference kernels / lean kernels, timed in turn block by block:")
    for r in rows:
        ref = next((b for b in rows if b["setting"] == r["setting"] + " ref"), None)
        if r["lean"] and ref:
            print(f"{r['setting']:<19} median {ref['median_us']:.0f} / {r['median_us']:.0f} us = "
                  f"{ref['median_us'] / r['median_us']:.2f}x, p99 {ref['p99_us']:.0f} / {r['p99_us']:.0f} us = "
                  f"{ref['p99_us'] / r['p99_us']:.2f}x, per second of audio {ref['rtf'] / r['rtf']:.2f}x")


def run(args) -> int:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})     # one core, as promised
    except (AttributeError, OSError):
        pass
    preset = load_preset(args.preset)
    effects = None
    if args.encoder and preset.autoencoder is None:
        bench_solvers(preset, 0.0)                   # the one-line error, before any timing
    if args.effects:
        from ..effects import load_effects
        effects = load_effects(args.effects)          # bad settings: an error before any timing
    print(f"rtdrums bench: preset {preset.name}, {preset.W.shape[1]} templates, {args.seconds:.0f} s of audio per setting, one core")
    print(f"{'setting':<23} {'n_fft/hop':>10} {'block':>6} {'median':>9} {'p99':>9} {'max':>9} {'budget':>9} {'RTF':>7} {'iters':>6} {'stem lat':>9}")
    rows = bench_engine(preset, args.seconds, (False,) if args.no_adapt_rows else (False, True), args.reference)
    for r in rows:
        print(f"{r['setting']:<23} {r['n_fft']:>5}/{r['hop']:<4} {r['block']:>6} {r['median_us']:>7.0f}us "
              f"{r['p99_us']:>7.0f}us {r['max_us']:>7.0f}us {r['budget_us']:>7.0f}us {r['rtf']:>7.3f} "
              f"{r['iterations']:>6.1f} {r['stem_latency_ms']:>7.1f}ms")
    for r in rows:
        base = next((b for b in rows if not b["adapt"] and b["lean"] == r["lean"]
                     and r["setting"].startswith(b["setting"].removesuffix(" ref") + " ")), None)
        if r["adapt"] and base:
            print(f"adaptation costs {r['median_us'] / base['median_us'] - 1:+.0%} median, "
                  f"{r['rtf'] / base['rtf'] - 1:+.0%} mean time per block ({base['setting']}, "
                  f"{r['templates'] - base['templates']} free residual components)")
    print_stages(rows)
    if args.reference:
        print_ratios(rows)
    if args.channels:
        from ..evaluation.channels_bench import bench_channels, print_channels

        print_channels(bench_channels(preset, args.channels, min(args.seconds, 10.0)))
    if args.encoder:
        print(f"\nframe solvers, low-latency setting (128-sample blocks), same input:")
        for r in bench_solvers(preset, args.seconds):
            print(f"{r['solver']:<22} median {r['median_us']:>6.0f}us  p99 {r['p99_us']:>6.0f}us  "
                  f"iterations/frame {r['iterations']:>5.2f}")
    if args.sampler:
        from ..sampler.bench import TEST_KIT, bench_voices, print_rows
        kit = TEST_KIT if args.sampler == "test kit" else args.sampler
        print()
        print_rows(bench_voices(preset, kit), kit)
    if args.solvers:
        from ..evaluation.speed import compare_solvers, markdown

        print("\nframe solver against scikit-learn and libnmfd, same templates and frames, same fit:")
        print(markdown(compare_solvers(preset, bench_input(min(args.seconds, 10.0)))))
    if effects:
        from ..effects_bench import run as run_effects

        print(f"\neffect chains of {args.effects}, each on its own output of the engine (48 kHz):")
        run_effects(effects, preset, bench_input(args.seconds), 48000, preset_name=args.preset)
    if args.live:
        from ..host.bench import DEFAULT_KIT, run as run_live

        print("\nlive host on a JACK dummy server (callback time, hit-to-note latency):")
        run_live(args.preset, DEFAULT_KIT, blocks=(64, 128), paths=("callback",), seconds=10.0)
    return 0
