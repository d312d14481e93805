"""Live benchmarks on a private JACK server (dummy backend, realtime scheduling when allowed):
callback processing time and hit-to-note latency, per block size and MIDI sending path.

For each block size a server runs with period == block; `rtdrums live` runs on it as a
subprocess; a JACK client plays a groove rendered from a kit into its input and receives its
MIDI. Hit-to-note latency = the JACK frame at which a note-on arrived minus the frame at which
the hit's true onset left the player client (matched to the latest onset at most 50 ms before),
over all notes and per drum (a drum's notes, by the preset's note numbers, against its own onsets):
median, p95, p99 and max. Measured at two receivers: the player itself, which feeds the host and
so reads its MIDI one JACK cycle later (`hit_to_note`, the figure docs/live.md has always given),
and a receiver client downstream of the host's MIDI port only, as a sampler is, which reads it in
the cycle it was written (`hit_to_note_downstream`; docs/jack-client.md explains the difference).
Callback time is measured by the host around each callback (its --stats-json). Each block size
also gets a take of the player client alone on its own server: the xruns the rig makes without
the host, to read the host's counts against. The first host take at a block size made most of the
xruns whichever path it ran (docs/live.md), so each block size starts with a warm-up take, reported
apart and left out, and with --repeats the paths alternate (A B B A ...) so neither always runs first.
Paths: native (PortAudio, compiled callback, MIDI from a thread via rtmidi), callback/thread (the
Python callback), jack (--backend jack: one native JACK client, MIDI in the cycle), and control:
the PortAudio host's clients doing nothing (host.control), for the xruns the client layout alone
makes (docs/jack-client.md).

    python -m rtdrums.host.bench --preset PRESET --kit KIT_FOLDER [--blocks 64 128] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..evaluation.metrics import latency_summary
from .harness import Harness, LiveProcess, wait_ports
from .jackserver import JackServer

SR = 48000
DRUMS = ("kick", "snare", "hihat")
DEFAULT_KIT = str(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "kit")
ROUTE = "kick=1,snare=2,hihat=3,residual=4"


def _stimulus(kit: str | os.PathLike, seconds: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """The groove's mixture, all onsets (samples) and each drum's onsets."""
    from ..training.kits import load_kit
    from ..training.render import render_groove, shipped_grooves
    r = render_groove(shipped_grooves("validation")[0], load_kit(kit), SR, max_seconds=seconds)
    return r.mix, np.sort(r.samples()), {d: np.sort(r.samples(d)) for d in DRUMS}


def drum_notes(preset: str) -> dict[str, set[int]]:
    """The MIDI notes each drum of a preset sends."""
    from ..preset import load_preset
    return {d.name: set(d.notes) for d in load_preset(preset).drums}


def hit_to_note_by_drum(notes: list[tuple[int, int, int]], onsets: dict[str, np.ndarray],
                        note_map: dict[str, set[int]]) -> dict[str, dict]:
    """Hit-to-note statistics per drum: each drum's note-ons against that drum's own onsets."""
    return {d: _stats(hit_to_note([t for t, n, _ in notes if n in note_map.get(d, ())], on))
            for d, on in onsets.items()}


def hit_to_note(arrivals: list[int], onsets: np.ndarray, window: int = SR // 20) -> np.ndarray:
    """Samples from the latest true onset to each note-on arrival (notes with none: left out)."""
    out = []
    for t in arrivals:
        i = np.searchsorted(onsets, t, side="right") - 1
        if i >= 0 and t - onsets[i] < window:
            out.append(t - onsets[i])
    return np.array(out, np.int64)


def _stats(x: np.ndarray) -> dict:
    """Median, p95, p99 and max (ms, eval's latency_summary) of latencies in samples."""
    s = latency_summary(np.asarray(x) / SR * 1e3)
    if not s["n"]:
        return {"n": 0}
    return {"n": s["n"], **{f"{k}_ms": round(s[k], 3) for k in ("median", "p95", "p99", "max")}}


@contextlib.contextmanager
def _take_server(block: int, label: str, realtime: bool):
    """A private JACK server (period == block) for one take: (a temporary folder, the server)."""
    with tempfile.TemporaryDirectory() as tmp, \
            JackServer(f"rtdrums-bench-{os.getpid()}-{block}-{label}", SR, block, capture=2, playback=4,
                       realtime=realtime, log=Path(tmp) / "jackd.log") as server:
        yield Path(tmp), server


def _host(path: str, preset: str, block: int, stats_file: Path, effects: str | None, env: dict):
    """The host of a take (a LiveProcess) and its MIDI output port."""
    if path == "control":
        cmd = [sys.executable, "-m", "rtdrums.host.control"]
        return LiveProcess(["--client-name", "rtbench", "--rate", str(SR), "--block", str(block),
                            "--inputs", "1", "--outputs", "4"], env=env, cmd=cmd), "rtbench-midi:out"
    how = ["--backend", "jack"] if path == "jack" else ["--backend", "portaudio", "--midi-path", path]
    live = LiveProcess(["--host-api", "jack", "--client-name", "rtbench", "--preset", preset,
                        "--rate", str(SR), "--block", str(block), "--route", ROUTE,
                        "--midi-backend", "jack", *how, "--view", "off",
                        "--no-record", "--stats-json", str(stats_file)]
                       + (["--config", effects] if effects else []), env=env)
    return live, "rtbench:midi_out" if path == "jack" else "rtbench-midi:out"


def run_one(preset: str, stim: np.ndarray, onsets: np.ndarray, block: int, path: str,
            realtime: bool = True, drum_onsets: dict | None = None,
            effects: str | None = None) -> dict:
    """One server (period == block), one live host, one take; effects: a settings file whose
    [effects] chains the host runs (docs/effects.md)."""
    with _take_server(block, path, realtime) as (tmp, server):
        stats_file = tmp / "stats.json"
        live, midi_port = _host(path, preset, block, stats_file, effects, server.env)
        harness, rx = Harness("bench", n_out=1, n_in=4), _receiver()
        try:
            wait_ports(harness.client, midi_port.split(":")[0] + ":.*", is_midi=True)
            harness.wire("rtbench", 1, [0, 1, 2, 3], midi_port)
            harness.connect(midi_port, rx.midi_in.name)
            time.sleep(0.5)
            harness.play(stim, extra_s=0.3)
            xruns = harness.xruns
            notes, rx_notes = harness.notes(), harness.notes(rx.midi)
        finally:
            live.stop(signal.SIGINT)
            harness.close()
            rx.close()
        if path == "control":
            return {"block": block, "midi_path": path, "control": True, "period": block,
                    "realtime_jack": realtime, "xruns_during_take": xruns}
        st = json.loads(stats_file.read_text())
    lat = hit_to_note([t for t, _, _ in notes], onsets)
    lat_rx = hit_to_note([t for t, _, _ in rx_notes], onsets)
    return {"block": block, "midi_path": path, "period": block, "realtime_jack": realtime,
            "callback": st["callback"], "cpu_load_max": st["cpu_load_max"],
            "xruns_during_take": xruns, "notes": len(notes), "hit_to_note": _stats(lat),
            "hit_to_note_by_drum": hit_to_note_by_drum(notes, drum_onsets, drum_notes(preset))
            if drum_onsets else None,
            "hit_to_note_downstream": _stats(lat_rx),
            "hit_to_note_downstream_by_drum":
                hit_to_note_by_drum(rx_notes, drum_onsets, drum_notes(preset)) if drum_onsets else None,
            "latency_reported": st["latency"], "midi_handoff": st.get("midi_handoff"),
            "effects": st.get("effects"), "_notes": notes, "_rx_notes": rx_notes}


def _receiver() -> Harness:
    """A client with only a MIDI input: connected from the host's MIDI port, it runs after the
    host in each JACK cycle, as a sampler does."""
    return Harness("bench-rx", n_out=0, n_in=0)


def rig_alone(stim: np.ndarray, block: int, realtime: bool = True) -> dict:
    """The same take with no host on the server: the xruns the rig itself makes."""
    with _take_server(block, "rig", realtime):
        harness, rx = Harness("bench", n_out=1, n_in=4), _receiver()
        try:
            time.sleep(0.5)
            harness.play(stim, extra_s=0.3)
            return {"block": block, "rig_alone": True, "xruns_during_take": harness.xruns}
        finally:
            harness.close()
            rx.close()


def take_order(paths: Sequence[str], repeats: int) -> list[str]:
    """The paths of `repeats` rounds, every other round reversed (A B, B A, A B ...)."""
    return [p for i in range(repeats) for p in (paths if i % 2 == 0 else paths[::-1])]


def run(preset: str, kit: str, blocks=(64, 128), paths=("native", "callback"),
        seconds: float = 10.0, realtime: bool = True, out=print, warmup: bool = True,
        repeats: int = 1, effects: str | None = None) -> list[dict]:
    stim, onsets, drum_onsets = _stimulus(kit, seconds)
    results = []
    for block in blocks:
        load = os.getloadavg()[0]
        rig = rig_alone(stim, block, realtime)
        results.append(rig | {"load_1min_before": load})
        out(f"block {block:4d} ({1e3 * block / SR:.2f} ms)  rig alone (no host)  "
            f"xruns {rig['xruns_during_take']}  (1-minute load before: {load:.2f})")
        if warmup:
            w = run_one(preset, stim, onsets, block, paths[0], realtime, effects=effects)
            results.append({"block": block, "warmup": True, "midi_path": paths[0],
                            "xruns_during_take": w["xruns_during_take"]})
            out(f"block {block:4d} ({1e3 * block / SR:.2f} ms)  warm-up take ({paths[0]}, left out)  "
                f"xruns {w['xruns_during_take']}")
        for path in take_order(list(paths), repeats):
            load = os.getloadavg()[0]
            r = run_one(preset, stim, onsets, block, path, realtime, drum_onsets, effects)
            r["load_1min_before"] = round(load, 2)
            results.append(r)
            if r.get("control"):
                out(f"block {block:4d} ({1e3 * block / SR:.2f} ms)  control (do-nothing PortAudio + "
                    f"rtmidi clients)  xruns {r['xruns_during_take']}  (load {load:.2f})")
                continue
            cb, hn = r["callback"], r["hit_to_note"]
            out(f"block {block:4d} ({1e3 * block / SR:.2f} ms)  MIDI from {path:8s}  callback "
                f"median {cb['median_ms']:.3f} p99 {cb['p99_ms']:.3f} max {cb['max_ms']:.3f} ms  "
                f"hit-to-note median {hn.get('median_ms', float('nan')):.2f} p99 "
                f"{hn.get('p99_ms', float('nan')):.2f} max {hn.get('max_ms', float('nan')):.2f} ms "
                f"({hn['n']} notes)  xruns {r['xruns_during_take']} (load {load:.2f})"
                + (f"  thread hand-off median {r['midi_handoff']['median_ms']:.3f} p99 "
                   f"{r['midi_handoff']['p99_ms']:.3f} max {r['midi_handoff']['max_ms']:.3f} ms"
                   if r.get("midi_handoff") else ""))
            for where, key in (("player", "hit_to_note_by_drum"),
                               ("downstream", "hit_to_note_downstream_by_drum")):
                hd = r[key] or {}
                for d, h in ({"all": r[key.removesuffix("_by_drum")]} | hd if hd else {}).items():
                    out(f"{'':>20}{where:<10} {d:<6} hit-to-note median "
                        f"{h.get('median_ms', float('nan')):.2f} p95 {h.get('p95_ms', float('nan')):.2f} "
                        f"p99 {h.get('p99_ms', float('nan')):.2f} max {h.get('max_ms', float('nan')):.2f}"
                        f" ms ({h['n']} notes)")
        by_path = {r["midi_path"]: r for r in results
                   if r["block"] == block and "_notes" in r}
        ref = next((q for q in ("callback", "native") if q in by_path), None)
        for other, (where, nk) in [(q, w) for q in by_path if q != ref
                                   for w in (("", "_notes"), ("downstream_", "_rx_notes"))] if ref else []:
            a, b = by_path[ref][nk], by_path[other][nk]
            # the same input gives the same notes; an xrun may change a few: pair the notes of
            # the longest common runs of (note, velocity) and compare their arrival times
            sm = difflib.SequenceMatcher(None, [n[1:] for n in a], [n[1:] for n in b],
                                         autojunk=False)
            d = np.array([b[j + k][0] - a[i + k][0] for i, j, size in sm.get_matching_blocks()
                          for k in range(size)]) / SR * 1e3
            if len(d) < 0.8 * min(len(a), len(b)):     # xruns changed too much to compare
                d = np.zeros(0)
            key = f"{where}{other}_minus_{ref}_ms"
            summary = {"block": block, key: None if len(d) == 0 else {
                "median": round(float(np.median(d)), 3), "mean": round(float(d.mean()), 3),
                "min": round(float(d.min()), 3), "max": round(float(d.max()), 3),
                "later_notes": int((d > 0).sum()), "earlier_notes": int((d < 0).sum()),
                "paired_notes": len(d), "notes": [len(a), len(b)]}}
            results.append(summary)
            out(f"block {block:4d}  {other} path minus {ref} path, note by note"
                f"{' (downstream receiver)' if where else ' (player)'}: {summary[key]}")
    for r in results:
        r.pop("_notes", None)
        r.pop("_rx_notes", None)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.host.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--kit", default=DEFAULT_KIT,
                   help="Hydrogen kit folder the groove is rendered with")
    p.add_argument("--blocks", type=int, nargs="+", default=[64, 128])
    p.add_argument("--paths", nargs="+", default=["native", "callback"],
                   choices=["native", "callback", "thread", "jack", "control"],
                   help="native: the compiled callback, MIDI from a thread it wakes; callback, "
                        "thread: the Python callback, MIDI sent from it or from a thread; jack: "
                        "one native JACK client (--backend jack); control: do-nothing PortAudio "
                        "and rtmidi clients in the host's place")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--no-realtime", action="store_true", help="run jackd without SCHED_FIFO")
    p.add_argument("--no-warmup", action="store_true",
                   help="no discarded warm-up take before each block size's measured takes")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of takes per block size, the path order alternating")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--effects", metavar="FILE", help="settings file with [effects] chains for the "
                   "host (the Python callback paths only; docs/effects.md)")
    a = p.parse_args(argv)
    if a.effects and {"native", "jack", "control"} & set(a.paths):
        p.error("--effects runs on the Python callback: use --paths callback and/or thread")
    if a.repeats < 1:
        p.error("--repeats must be 1 or more")
    res = run(a.preset, a.kit, a.blocks, a.paths, a.seconds, not a.no_realtime,
              warmup=not a.no_warmup, repeats=a.repeats, effects=a.effects)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
