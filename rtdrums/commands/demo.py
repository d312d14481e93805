"""Run the main job on the bundled demo recording and check it against its ground truth.

Separates rtdrums/data/demo/groove.flac (12 s of a real drummer's groove, rendered from a
Hydrogen kit, so every hit's onset is known) into stems and MIDI with the default preset, then
prints what it wrote, the onset F-measure per drum and the measured trigger latency: the time
from each true onset to the end of the 128-sample block in which the note-on was sent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..demo_data import DEMO_AUDIO, DEMO_ONSETS, read_onsets
from ..demo_figure import figure_target, plot_demo
from ..evaluation.metrics import latencies_ms, latency_summary, onset_scores
from ..separation_job import run_separation

help = "separate the bundled demo recording and report F-measure and trigger latency"


def add_arguments(p):
    p.add_argument("--out", default="demo-out", help="output folder (default: %(default)s)")
    p.add_argument("--preset", default="default", help="preset (default: %(default)s)")
    p.add_argument("--plot", metavar="PNG",
                   help="also draw the groove's masks, activations, triggers and stems into this PNG")


def run(args) -> int:
    if args.plot:
        figure_target(args.plot)                  # a wrong folder fails before the work, not after
    t0 = time.perf_counter()
    result = run_separation(DEMO_AUDIO, Path(args.out), args.preset, block=128)
    print(result.summary(time.perf_counter() - t0))
    truth = read_onsets(DEMO_ONSETS)
    ev, rate = result.separation.events, result.sample_rate
    print(f"\nagainst the ground truth ({DEMO_ONSETS.name}), 128-sample blocks at {rate} Hz:")
    print(f"{'drum':<7} {'hits':>5} {'F(50ms)':>8} {'P':>6} {'R':>6} {'latency median':>15} {'p95':>7}")
    for d, name in enumerate(result.separation.names[:-1]):
        ref = truth.get(name, np.zeros(0))
        mine = ev[ev["drum"] == d]
        score = onset_scores(ref, mine["onset"] / rate, window=0.05)
        lat = latency_summary(latencies_ms(ref, mine["onset"] / rate, mine["emitted"] / rate, 0.05))
        lat_txt = (f"{lat['median']:>12.1f} ms {lat['p95']:>5.1f} ms" if lat["n"]
                   else f"{'-':>15} {'-':>7}")
        print(f"{name:<7} {len(ref):>5} {score['f']:>8.2f} {score['precision']:>6.2f} "
              f"{score['recall']:>6.2f} {lat_txt}")
    if args.plot:
        print(f"\nwrote {plot_demo(Path(args.plot), args.preset)}")
    return 0
