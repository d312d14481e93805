"""The sampler's cost per block: `rtdrums bench --sampler [KIT]`.

Voices of a real kit (kick, snare and open hi-hat in turn, all long enough to sound through the
timed blocks) are started, then the block call (render_block with no new notes, and
form_outputs) is timed from Python; the cost of a voice is the median block time with V voices
minus that with none, over V (the call's fixed cost from the interpreter cancels; the compiled
callback does not pay it). Voice counts are interleaved. One core; quote medians from one run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..events import EVENT_DTYPE
from ..outputs import form_outputs
from .build import build_sampler
from .settings import parse_sampler
from .voices import render_block, reset

TEST_KIT = str(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "kit")
NOTES = (36, 38, 46)          # kick, snare, open hi-hat: no note chokes another
TIMED_BLOCKS = 8


def bench_voices(preset, kit: str, block: int = 128, sample_rate: int = 48000,
                 voices=(0, 1, 8, 32), repeats: int = 1000) -> list[dict]:
    a = build_sampler(parse_sampler({"kit": kit, "voices": 64}, Path.cwd()), preset, sample_rate, block)
    D = a.smp.shape[1]
    mono = np.zeros(block, np.float32)
    stems = np.zeros((block, D + 1), np.float32)
    outs = np.zeros((block, D + 4), np.float32)
    ev = np.zeros(max(voices) + 1, EVENT_DTYPE)
    for e in range(len(ev)):
        ev[e]["note"], ev[e]["velocity"], ev[e]["decided"], ev[e]["emitted"] = NOTES[e % 3], 100, 0, block
    times = {v: [] for v in voices}
    for r in range(repeats + 1):                  # the voice counts interleaved; round 0 warms up
        for v in voices:
            reset(a)
            render_block(a, ev, v, block)                     # start v voices (not timed)
            for k in range(TIMED_BLOCKS):
                t0 = time.perf_counter()
                render_block(a, ev, 0, block)
                form_outputs(mono, stems, a.smp, a.keep, outs, block)
                if r:
                    times[v].append(time.perf_counter() - t0)
            sounding = int((a.v_sound >= 0).sum())
            if sounding != v:
                raise RuntimeError(f"{v} voices started, {sounding} still sounding: samples too short")
    rows = [{"voices": v, "median_us": float(np.median(t) * 1e6), "p99_us": float(np.percentile(t, 99) * 1e6)}
            for v, t in times.items()]
    base = rows[0]["median_us"]
    for r in rows:
        r["per_voice_us"] = (r["median_us"] - base) / r["voices"] if r["voices"] else None
    return rows


def print_rows(rows: list[dict], kit: str, block: int = 128) -> None:
    print(f"sampler ({Path(kit).name}, block {block}; block call with no new notes, then the outputs formed):")
    print(f"{'voices':>7} {'median':>9} {'p99':>9} {'per voice':>10}")
    for r in rows:
        pv = "" if r["per_voice_us"] is None else f"{r['per_voice_us']:.3f}us"
        print(f"{r['voices']:>7} {r['median_us']:>7.2f}us {r['p99_us']:>7.2f}us {pv:>10}")
