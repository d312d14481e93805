"""rtdrums bench --channels: how many engines one machine carries in real time.

Counts of channels from 1 up to N, each a set of engines at the default setting (2048/128,
128-sample blocks) on the bench's groove (each channel starting at another point of it), spread
over one thread per core (rtdrums.channels), sharing the read-only tables (Engine(share=)). Two
criteria, each reported: every round (every channel's block of a cycle) ends within half the
block's budget, which one descheduling of the process fails (a shared VM has such hiccups of a
few ms even with one channel); and the 99th percentile of the rounds is within half the budget,
i.e. at most one round in a hundred is late (a host would cover those by a second period of
buffering). Beside the wall-clock rounds, the
CPU time per channel's block (thread CPU time, median) and the channels that CPU time would fit
into half the budget on all cores: on a machine shared with other jobs, the rounds also wait for
the CPU, and the CPU time says what the engines themselves need.
"""

from __future__ import annotations

import os

import numpy as np

from ..channels import engine_bytes, run_channels
from ..engine import Engine


def _counts(n: int) -> list[int]:
    c, out = 1, []
    while c < n:
        out.append(c)
        c = c * 2 if c < 8 else c + 8
    return out + [n]


def bench_channels(preset, max_channels: int, seconds: float) -> dict:
    """Rows per channel count (round median, p99, max in us, pass) and the largest passing count."""
    from ..commands.bench import SETTINGS, bench_input

    try:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))   # the bench pins itself to one core
    except (AttributeError, OSError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    settings, block = SETTINGS["low-latency"]
    budget = block / settings.sample_rate * 1e6
    x = bench_input(seconds)
    rows, best, best99, per_engine, shared_bytes = [], 0, 0, 0, 0
    for n in _counts(max_channels):
        first = Engine(preset, settings.sample_rate, max_block=block)
        engines = [first] + [Engine(preset, settings.sample_rate, max_block=block, share=first) for _ in range(n - 1)]
        for e in engines:
            e.warm()
        per_engine = engine_bytes(engines[0])
        shared_bytes = per_engine - engine_bytes(engines[-1], shared=engines[0]) if n > 1 else shared_bytes
        inputs = [np.roll(x, c * 4801) for c in range(n)]
        run = run_channels(engines, inputs, block, cores, keep=False)
        t = run.round_s * 1e6
        cpu = float(np.median(run.cpu_s)) * 1e6 / n
        ok = bool(t.max() < budget / 2)
        ok99 = bool(np.percentile(t, 99) < budget / 2)
        rows.append({"channels": n, "median_us": float(np.median(t)), "p99_us": float(np.percentile(t, 99)),
                     "max_us": float(t.max()), "late": int(np.sum(t >= budget / 2)), "ok": ok, "ok99": ok99,
                     "cpu_us": cpu, "by_cpu": int(cores * budget / 2 // cpu) if cpu > 0 else 0})
        best = n if ok else best
        best99 = n if ok99 else best99
        if np.median(t) >= budget / 2:
            break
    return {"cores": cores, "budget_us": budget, "rows": rows, "largest": best, "largest_p99": best99, "engine_bytes": per_engine, "shared_bytes": shared_bytes,
            "rounds": len(x) // block}


def print_channels(res: dict) -> None:
    print(f"\nchannels: engines at 2048/128, 128-sample blocks, in {res['cores']} threads (one per core); a round = "
          f"every channel's block of one cycle; half the budget = {res['budget_us'] / 2:.0f} us; {res['rounds']} rounds")
    print(f"{'channels':>8} {'median':>9} {'p99':>9} {'max':>9} {'late':>6} {'all in time':>11} "
          f"{'p99 in time':>11} {'CPU/block':>10} {'fit by CPU':>10}")
    for r in res["rows"]:
        print(f"{r['channels']:>8} {r['median_us']:>7.0f}us {r['p99_us']:>7.0f}us {r['max_us']:>7.0f}us "
              f"{r['late']:>6} {'yes' if r['ok'] else 'no':>11} {'yes' if r['ok99'] else 'no':>11} {r['cpu_us']:>8.0f}us "
              f"{r['by_cpu']:>10}")
    print(f"largest count with every block under half its budget: {res['largest'] or 'none'}; "
          f"largest count whose p99 round is under half the budget: {res['largest_p99'] or 'none'}")
    print(
          f"memory per engine {res['engine_bytes'] / 2**20:.1f} MiB (its tables, state and buffers), "
          f"{(res['engine_bytes'] - res['shared_bytes']) / 2**20:.1f} MiB per further channel (the read-only tables shared)")
