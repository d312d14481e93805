"""The autoencoder against the multiplicative updates, side by side on the same renders.

    python -m rtdrums.evaluation.autoencoder_eval --train-kit DIR [--eval-kit DIR] [--grooves 4]
    python -m rtdrums.evaluation.autoencoder_eval --preset P --eval-kit DIR ... [--encoder-kit DIR]

A preset is trained on the training kit (templates, references, the threshold detector tuned on
the shipped training grooves, as `rtdrums train --trigger threshold` does) and its encoder on
grooves of the training split rendered with that kit. Each solver configuration then gets its
own references and tuned trigger settings (the activations differ, so a trigger tuned on
another solver's would not be fair) and runs on test-split grooves rendered with the evaluation
kit (default: the training kit, i.e. calibrated; another kit: that kit left out). Reported per
configuration: mean solver iterations per frame, the mean banded KL cost D(v | W h) per frame,
microseconds per frame of the whole engine, onset F (50 ms) and stem SI-SDR per drum. The
iteration ladder gives the iterations per frame (no early stop) that the previous-frame start and
the encoder start need to reach the cost of today's solver (previous-frame start, 20 iterations,
tolerance 1e-3).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..engine import Engine
from ..offline import separate
from ..preset import Preset
from .metrics import onset_scores, si_sdr

LADDER = (0, 1, 2, 3, 4, 6, 8, 12, 16, 20, 30, 40)


def configurations(base, refine=(0, 1, 2, 3, 5)) -> dict[str, object]:
    """Solver settings compared: today's, the encoder as warm start, the encoder refined by k."""
    s = base
    return {"kl, previous start (today)": s,
            "kl, encoder start": replace(s, start="encoder"),
            **{f"autoencoder + {k} it": replace(s, method="autoencoder", iterations=k, tolerance=0.0)
               for k in refine}}


def banded_cost(engine: Engine, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean KL cost per frame of the banded frames the engine solves, and the activations."""
    from ..dsp.stft import spectrogram

    h, _ = engine.analyse(x)
    T = engine.tables
    V = np.add.reduceat(spectrogram(x, engine.settings)[:, :h.shape[0]], T.band_edges[:-1], axis=0)
    WH = T.Wb @ h.T + 1e-12
    keep = V.sum(axis=0) > 0
    d = V * np.log((V + 1e-12) / WH) - V + WH
    return float(d[:, keep].sum() / max(keep.sum(), 1)), h


def with_solver(preset: Preset, solver, hits, kit) -> Preset:
    """The preset with a solver, its references re-measured and its threshold detector re-tuned."""
    from ..training.train import calibrate, tune

    p = calibrate(replace(preset, solver=solver), hits)
    return tune(p, [kit], learned=False)


def evaluate(preset: Preset, renders) -> dict:
    engine = Engine(preset)
    engine.warm()
    names = engine.drum_names
    f_counts = {d: np.zeros(3) for d in names}
    si = {d: [] for d in names}
    iters = frames = seconds = 0.0
    for r in renders:
        engine.reset()
        t0 = time.perf_counter()
        sep = separate(engine, r.mix, 128)
        seconds += time.perf_counter() - t0
        iters += engine.mean_iterations * engine.frames_processed
        frames += engine.frames_processed
        ev = sep.events
        for i, d in enumerate(names):
            est = ev["onset"][ev["drum"] == i] / r.sample_rate
            sc = onset_scores(r.times(d), est, 0.05)
            f_counts[d] += (sc["ref"], sc["est"], sc["matched"])
            si[d].append(si_sdr(r.stems[d], sep.stems[:, i]))
    from .metrics import counts_to_prf
    return {"iterations": iters / frames, "us_per_frame": seconds / frames * 1e6,
            "f": {d: counts_to_prf(*map(int, f_counts[d]))["f"] for d in names},
            "si_sdr": {d: float(np.mean([v for v in si[d] if v is not None])) for d in names}}


def ladder(preset: Preset, renders, start: str, target: float) -> dict:
    """Mean cost per frame after k iterations (no early stop) from a start, k over LADDER, and the
    fewest that reach target."""
    costs = {}
    reached = None
    for k in LADDER:
        if k == 0 and start == "previous":
            continue
        s = replace(preset.solver, start=start, iterations=max(k, 1) if start == "previous" else k,
                    tolerance=0.0, method="kl" if start == "previous" else "autoencoder")
        e = Engine(replace(preset, solver=s))
        costs[k] = float(np.mean([banded_cost(e, r.mix)[0] for r in renders]))
        if reached is None and costs[k] <= target:
            reached = k
            break
    return {"costs": costs, "iterations_to_target": reached}


def run(train_kit: Path, eval_kit: Path, grooves: int, seconds: float, out: Path | None,
        refine=(0, 1, 2, 3, 5)) -> dict:
    from ..preset import load_preset
    from ..training.autoencoder import train_autoencoder
    from ..training.kits import load_kit
    from ..training.render import render_groove, shipped_grooves
    from ..training.train import hits_from_kit, train

    kit, ekit = load_kit(train_kit), load_kit(eval_kit)
    hits, prov = hits_from_kit(kit, 48000)
    t0 = time.perf_counter()
    preset = train([hits], {"sources": [prov]}, f"ae-{kit.name}", base=load_preset("default"),
                   tune_kits=[kit], learned=False)
    t_templates = time.perf_counter() - t0
    t0 = time.perf_counter()
    preset = train_autoencoder(preset, [kit])
    t_encoder = time.perf_counter() - t0
    renders = [render_groove(g, ekit, 48000, max_seconds=seconds) for g in shipped_grooves("test")[:grooves]]
    res = {"train_kit": kit.name, "eval_kit": ekit.name, "grooves": grooves, "seconds": seconds,
           "encoder_training_s": t_encoder, "preset_training_s": t_templates,
           "autoencoder": preset.provenance["autoencoder"], "configs": {}}
    for name, solver in configurations(preset.solver, refine).items():
        p = with_solver(preset, solver, hits, kit)
        row = evaluate(p, renders)
        row["cost"] = float(np.mean([banded_cost(Engine(p), r.mix)[0] for r in renders]))
        res["configs"][name] = row
        print(name, json.dumps(row), flush=True)
    target = res["configs"]["kl, previous start (today)"]["cost"]
    res["ladder"] = {start: ladder(preset, renders, start, target) for start in ("previous", "encoder")}
    print(json.dumps(res["ladder"]), flush=True)
    if out:
        out.write_text(json.dumps(res, indent=1))
    return res


def run_with_trigger(preset_name: str, eval_kits: list[Path], encoder_kit: Path | None, grooves: int,
                     seconds: float) -> dict:
    """A trained preset's own trigger (learned, if it has one) and references, unchanged, on each
    solver its encoder allows; a preset without an encoder gets one trained on encoder_kit."""
    from ..preset import load_preset
    from ..training.autoencoder import REFINE, train_autoencoder, without_encoder
    from ..training.kits import load_kit
    from ..training.render import render_groove, shipped_grooves

    preset = load_preset(preset_name)
    if preset.autoencoder is None:
        preset = train_autoencoder(preset, [load_kit(encoder_kit)])
    kl = without_encoder(preset.solver)
    refine = preset.solver.iterations if preset.solver.method == "autoencoder" else REFINE
    solvers = {"kl, previous start": kl, "kl, encoder start": replace(kl, start="encoder"),
               f"autoencoder + {refine} it": replace(kl, method="autoencoder", iterations=refine, tolerance=0.0)}
    res = {"preset": preset_name, "trigger": "learned" if preset.onset_model is not None else "threshold",
           "autoencoder": preset.provenance.get("autoencoder"), "kits": {}}
    for kit_dir in eval_kits:
        kit = load_kit(kit_dir)
        renders = [render_groove(g, kit, 48000, max_seconds=seconds) for g in shipped_grooves("test")[:grooves]]
        res["kits"][kit.name] = {}
        for name, solver in solvers.items():
            row = evaluate(replace(preset, solver=solver), renders)
            res["kits"][kit.name][name] = row
            print(kit.name, name, json.dumps(row), flush=True)
    return res


def markdown_trigger(res: dict) -> str:
    lines = ["| kit | solver | iterations / frame | us / frame (engine) | F kick | F snare | F hihat | "
             "SI-SDR kick | SI-SDR snare | SI-SDR hihat |", "|" + "---|" * 10]
    for kit, rows in res["kits"].items():
        for name, r in rows.items():
            lines.append(f"| {kit} | {name} | {r['iterations']:.2f} | {r['us_per_frame']:.1f} | "
                         + " | ".join(f"{v:.3f}" for v in r["f"].values()) + " | "
                         + " | ".join(f"{v:.2f}" for v in r["si_sdr"].values()) + " |")
    return "\n".join(lines)


def markdown(res: dict) -> str:
    names = list(next(iter(res["configs"].values()))["f"])
    head = "| solver | iterations / frame | KL cost / frame | us / frame (engine) | " + \
        " | ".join(f"F {d}" for d in names) + " | " + " | ".join(f"SI-SDR {d}" for d in names) + " |"
    lines = [head, "|" + "---|" * (4 + 2 * len(names))]
    for name, r in res["configs"].items():
        lines.append(f"| {name} | {r['iterations']:.2f} | {r['cost']:.4g} | {r['us_per_frame']:.1f} | "
                     + " | ".join(f"{r['f'][d]:.3f}" for d in names) + " | "
                     + " | ".join(f"{r['si_sdr'][d]:.2f}" for d in names) + " |")
    lines += ["", "| start | mean cost after k iterations (no early stop) | iterations to today's cost |",
              "|---|---|---|"]
    for start, lad in res["ladder"].items():
        costs = ", ".join(f"{k}: {c:.4g}" for k, c in lad["costs"].items())
        lines.append(f"| {start} | {costs} | {lad['iterations_to_target']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-kit", type=Path)
    ap.add_argument("--eval-kit", type=Path, nargs="+")
    ap.add_argument("--preset", help="measure this preset's own trigger on each solver instead of training one")
    ap.add_argument("--encoder-kit", type=Path, help="with --preset: train its encoder on this kit if it has none")
    ap.add_argument("--grooves", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--refine", default="0,1,2,3,5", help="KL updates after the encoder to compare")
    args = ap.parse_args(argv)
    if args.preset:
        print(markdown_trigger(run_with_trigger(args.preset, args.eval_kit, args.encoder_kit, args.grooves,
                                                args.seconds)))
        return
    res = run(args.train_kit, (args.eval_kit or [args.train_kit])[0], args.grooves, args.seconds, args.out,
              tuple(int(k) for k in args.refine.split(",")))
    print(markdown(res))


if __name__ == "__main__":
    main()
