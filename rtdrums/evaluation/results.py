"""The Results tables of docs/measurements.md: `rtdrums eval` over the allowed kits in both protocols.

    python -m rtdrums.evaluation.results --out results [--seconds 20] [--jobs 2] [--kits A B] [--rooms]

Per kit: the calibrated protocol (templates from the kit's own samples, with all baselines) and
the generic protocol made fair by leaving the kit out (a preset trained on the allowed acoustic
kits other than the evaluated one; trained once per distinct set, saved in OUT/presets). Writes each run's results.md,
results.json and figures under OUT/KIT/PROTOCOL/, the solver speed comparison, and OUT/RESULTS.md
with the summary tables and the command that produced them. With --rooms, both protocols are
also evaluated on the same grooves recorded in simulated rooms (rtdrums.training.rooms, evaluation seeds),
under OUT/KIT/PROTOCOL-rooms/, with tables of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from . import protocol, report
from .report import fmt

DRUMS = ("kick", "snare", "hihat")


def _train_left_out(kit: str | None, sample_rate: int, out: Path, root: Path) -> Path:
    """Train (once) the preset of the allowed acoustic kits other than kit; returns its folder."""
    from threadpoolctl import threadpool_limits

    from ..preset import save_preset

    threadpool_limits(1)
    name = f"without-{kit}" if kit in protocol.ACOUSTIC_KITS else "all-acoustic-kits"
    folder = out / "presets" / name
    if kit in protocol.ACOUSTIC_KITS:
        preset = protocol.left_out(kit, sample_rate, protocol.base_preset(), root)
    else:
        preset = protocol.trained_on([root / k for k in protocol.ACOUSTIC_KITS], sample_rate, name,
                                     protocol.base_preset())
    return save_preset(preset, folder)


def _calibrated_dir(out: Path, kit: str) -> Path:
    """Where the calibrated preset of a kit is kept (the speed comparison reuses it)."""
    return out / "presets" / f"calibrated-{kit}"


def _left_out_key(kit: str) -> str | None:
    return kit if kit in protocol.ACOUSTIC_KITS else None


def _evaluate(kit: str, left_out: Path, seconds: float, sample_rate: int, block: int, out: Path,
              root: Path, rooms: bool = False) -> list[dict]:
    """Both protocols on one kit; all baselines with the calibrated one (on dry renders); with
    rooms, each protocol again on room renders (engine only)."""
    from threadpoolctl import threadpool_limits

    from ..preset import load_preset, save_preset
    from ..training.render import shipped_grooves
    from .run import BASELINES, evaluate_kit

    threadpool_limits(1)
    base, grooves, done = protocol.base_preset(), shipped_grooves("test"), []
    for name, make, methods in (
            ("calibrated", lambda: protocol.calibrated(root / kit, sample_rate, base), BASELINES),
            ("left-out", lambda: load_preset(left_out), ())):
        t0 = time.perf_counter()
        preset = make()
        train_s = time.perf_counter() - t0
        if name == "calibrated":
            save_preset(preset, _calibrated_dir(out, kit))
        for varied in (False, True) if rooms else (False,):
            res, fig = evaluate_kit(root / kit, preset, grooves, seconds, sample_rate, block,
                                    () if varied else methods, rooms=varied)
            res["protocol"] = name
            res["train_seconds"] = train_s
            res["wall_seconds"] = time.perf_counter() - t0
            report.write(res, fig, out / kit / (f"{name}-rooms" if varied else name))
            done.append(res)
    return done


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _drum_cells(m: dict, key: str, digits: int = 2) -> list[str]:
    return [fmt(m["drums"][d][key], digits) for d in DRUMS]


def _lat_cells(m: dict) -> list[str]:
    out = []
    for d in DRUMS:
        lat = m["drums"][d]["latency_ms"]
        out.append(" / ".join(fmt(lat.get(k), 1) for k in report.LATENCY_STATS) if lat else "-")
    return out


def engine_table(runs: list[dict]) -> str:
    head = ["kit", "F 50 ms (K / S / H)", "F 20 ms", "latency median / p95 / p99 / max ms: kick", "snare", "hihat",
            "velocity r", "SI-SDR dB (K / S / H)", "SDR dB"]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in runs:
        m = r["methods"]["rtdrums"]
        lines.append(_row([Path(r["kit_dir"]).name, " / ".join(_drum_cells(m, "f_50ms")), " / ".join(_drum_cells(m, "f_20ms")),
                           *_lat_cells(m), " / ".join(_drum_cells(m, "velocity_r")),
                           " / ".join(_drum_cells(m, "si_sdr_db", 1)), " / ".join(_drum_cells(m, "sdr_db", 1))]))
    lines.append(_row(["**mean**"] + [" / ".join(fmt(np.mean([r["methods"]["rtdrums"]["drums"][d][k] or 0
                                                              for r in runs]), dg) for d in DRUMS)
                                      for k, dg in (("f_50ms", 2), ("f_20ms", 2))] + ["", "", "", ""] +
                      [" / ".join(fmt(np.mean([r["methods"]["rtdrums"]["drums"][d][k] or 0 for r in runs]), 1)
                                  for d in DRUMS) for k in ("si_sdr_db", "sdr_db")]))
    return "\n".join(lines)


def recall_by_velocity_table(runs: list[dict]) -> str:
    """rtdrums' recall at 50 ms per kit by the reference hits' MIDI velocity (K / S / H)."""
    bands = list(runs[0]["methods"]["rtdrums"]["drums"][DRUMS[0]]["recall_by_velocity"])
    head = ["kit"] + [f"velocity {b}: recall (K / S / H)" for b in bands] + ["snare hits per band"]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in runs:
        m = r["methods"]["rtdrums"]["drums"]
        lines.append(_row([Path(r["kit_dir"]).name]
                          + [" / ".join(fmt(m[d]["recall_by_velocity"][b]["recall"]) for d in DRUMS) for b in bands]
                          + [" / ".join(str(m["snare"]["recall_by_velocity"][b]["ref"]) for b in bands)]))
    return "\n".join(lines)


def errors_table(runs: list[dict]) -> str:
    """rtdrums' errors per kit and drum: misses by velocity band, false triggers by cause."""
    from .causes import FALSE_CAUSES

    first = runs[0]["methods"]["rtdrums"]["drums"][DRUMS[0]]
    bands = list(first["recall_by_velocity"])
    head = (["kit", "drum", "hits", "missed: velocity " + " / ".join(bands),
             "missed: alone / beside quieter / masked by a louder hit", "false triggers"]
            + [{"double": "own hit (double)", "none": "nothing near"}.get(c, c) for c in FALSE_CAUSES])
    lines = [_row(head), _row(["---"] * len(head))]
    for r in runs:
        for d in DRUMS:
            s = r["methods"]["rtdrums"]["drums"][d]
            by, fc, mc = s["recall_by_velocity"], s.get("false_by_cause") or {}, s.get("missed_by_cause")
            masked = (f"{mc['alone']} / {mc['beside_quieter']} / "
                      f"{sum(v for k, v in mc.items() if k not in ('alone', 'beside_quieter'))}") if mc else "-"
            lines.append(_row([Path(r["kit_dir"]).name, d, str(s["ref"]),
                               " / ".join(str(by[b]["ref"] - by[b]["matched"]) for b in bands), masked,
                               str(s["est"] - s["matched_50ms"])]
                              + ["-" if c == d else str(fc.get(c, "-")) for c in FALSE_CAUSES]))
    return "\n".join(lines)


def baseline_table(runs: list[dict]) -> str:
    head = ["kit", "method", "F 50 ms (K / S / H)", "F 20 ms", "latency median ms (K / S / H)",
            "SI-SDR dB (K / S / H)", "s per 30 s audio"]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in runs:
        for key, m in r["methods"].items():
            lat = " / ".join(fmt((m["drums"][d]["latency_ms"] or {}).get("median"), 1) for d in DRUMS)
            lines.append(_row([Path(r["kit_dir"]).name, report.METHOD_TITLES.get(key, key), " / ".join(_drum_cells(m, "f_50ms")),
                               " / ".join(_drum_cells(m, "f_20ms")), lat, " / ".join(_drum_cells(m, "si_sdr_db", 1)),
                               fmt(m["seconds_per_30s_audio"])]))
    return "\n".join(lines)


def summary(runs: list[dict], command: str, speed_md: str | None) -> str:
    cal = [r for r in runs if r["protocol"] == "calibrated" and not r.get("rooms")]
    gen = [r for r in runs if r["protocol"] == "left-out" and not r.get("rooms")]
    cal_rooms = [r for r in runs if r["protocol"] == "calibrated" and r.get("rooms")]
    gen_rooms = [r for r in runs if r["protocol"] == "left-out" and r.get("rooms")]
    any_run = runs[0]
    parts = [
        "# Results", "",
        f"Produced by `{command}` (`make results`). Renders of the {len(any_run['grooves'])} shipped Groove "
        f"MIDI Dataset test grooves (first {fmt(any_run['seconds_per_groove'], 0)} s each) with each allowed "
        f"Hydrogen kit; engine at {any_run['sample_rate']} Hz in blocks of {any_run['block']} samples, "
        f"run block by block as live; stem latency {fmt(any_run['stem_latency_ms'])} ms. "
        "Latency: emitted note-on minus true onset. SDR/SI-SDR: mean over grooves.", "",
        "## Calibrated: templates from the kit's own samples", "", engine_table(cal), "",
        "## Generic: a preset trained on the allowed acoustic kits other than the evaluated one", "",
        "(All five acoustic kits for the electronic kits.)", "", engine_table(gen), ""]
    if cal_rooms or gen_rooms:
        parts += ["## In simulated rooms", "",
                  "The same grooves recorded in simulated rooms with microphones, EQ, compression, "
                  "clipping, level changes, noise and other sounds (rtdrums.training.rooms; evaluation seeds, "
                  "disjoint from training's). Calibrated:", "", engine_table(cal_rooms), "",
                  "Generic (kit left out):", "", engine_table(gen_rooms), ""]
    parts += [
        "## Recall by velocity (calibrated)", "",
        "Hits caught within 50 ms, by the MIDI velocity the groove plays them at.", "",
        recall_by_velocity_table(cal), "",
        "## Errors (generic, kit left out)", "",
        "Missed hits by the MIDI velocity the groove plays them at, and false triggers (unmatched at "
        "50 ms) by the source that began nearest them (rtdrums/evaluation/causes.py).", "",
        errors_table(gen), "",
        "## Baselines (calibrated protocol; the offline NMF uses the same templates as rtdrums; the "
        "masks from the true stems are the ceiling of masking the engine's frames)", "",
        baseline_table(cal), ""]
    if speed_md:
        parts += ["## Solver speed", "", speed_md, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rtdrums.evaluation.results", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--kits", nargs="+", default=list(protocol.ALLOWED_KITS))
    ap.add_argument("--root", type=Path, default=protocol.KITS_ROOT, help="folder of the Hydrogen kits")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--sample-rate", type=int, default=48000)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rooms", action="store_true",
                    help="also evaluate both protocols on renders recorded in simulated rooms")
    args = ap.parse_args(argv)
    bad = [k for k in args.kits if k not in protocol.ALLOWED_KITS]
    missing = [k for k in args.kits if not (args.root / k).is_dir()]
    if bad or missing:
        print(f"results: {'not an allowed kit: ' + ', '.join(bad) if bad else 'kits not installed: ' + ', '.join(missing)}"
              " (apt-get install hydrogen-drumkits)", file=sys.stderr)
        return 1
    command = "python -m rtdrums.evaluation.results " + " ".join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        keys = sorted({_left_out_key(k) for k in args.kits}, key=str)
        n = len(keys)
        trained = dict(zip(keys, pool.map(_train_left_out, keys, [args.sample_rate] * n, [args.out] * n,
                                          [args.root] * n)))
        print(f"trained {len(trained)} left-out presets ({time.perf_counter() - t0:.0f} s)", flush=True)
        jobs = {pool.submit(_evaluate, k, trained[_left_out_key(k)], args.seconds, args.sample_rate, args.block,
                            args.out, args.root, args.rooms): k for k in args.kits}
        for job in as_completed(jobs):
            for r in job.result():
                runs.append(r)
                m = r["methods"]["rtdrums"]["drums"]
                label = r["protocol"] + ("-rooms" if r.get("rooms") else "")
                print(f"{Path(r['kit_dir']).name:<24} {label:<17} F50 " + " ".join(fmt(m[d]["f_50ms"]) for d in DRUMS)
                      + f"  ({r['wall_seconds']:.0f} s, {time.perf_counter() - t0:.0f} s total)", flush=True)
    order = {k: i for i, k in enumerate(args.kits)}
    runs.sort(key=lambda r: (order.get(Path(r["kit_dir"]).name, 99), r["protocol"], bool(r.get("rooms"))))
    speed_md = _speed(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "RESULTS.md").write_text(summary(runs, command, speed_md))
    (args.out / "results.json").write_text(json.dumps(report._clean(runs), indent=1) + "\n")
    print(f"wrote {args.out / 'RESULTS.md'} in {time.perf_counter() - t0:.0f} s")
    return 0


def _speed(args) -> str | None:
    """Solver speed on the first kit's first groove with its calibrated templates."""
    from ..training.kits import load_kit
    from ..preset import load_preset
    from ..training.render import render_groove, shipped_grooves
    from .speed import compare_solvers, markdown

    kit = args.kits[0]
    preset = load_preset(_calibrated_dir(args.out, kit))
    x = render_groove(shipped_grooves("test")[0], load_kit(args.root / kit), args.sample_rate, 12.0).mix
    res = compare_solvers(preset, x)
    (args.out / "speed.json").write_text(json.dumps(report._clean(res), indent=1) + "\n")
    return f"Kit {kit}, first test groove, calibrated templates.\n\n" + markdown(res)


if __name__ == "__main__":
    sys.exit(main())
