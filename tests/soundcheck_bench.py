"""What limits the soundcheck preset: its parts swapped for better ones, on one kit (docs/calibration.md).

    PYTHONPATH=$PWD:tests python tests/soundcheck_bench.py KIT_DIR [--variants a,b,...] [--split validation]
    PYTHONPATH=$PWD:tests python tests/soundcheck_bench.py KIT_DIR --takes-only
    PYTHONPATH=$PWD:tests python tests/soundcheck_bench.py KIT_DIR --score PRESET_DIR ... [--split test]

Writes the soundcheck takes of tests/groove_bench.py (12 strokes of kick, snare and closed hi-hat,
8 of open and pedal hi-hat, soft to loud) rendered with the kit, learns templates from them as
`rtdrums train --hits` does, and fits the learned trigger in several ways on features recorded
once per template set; prints the onset F (50 ms; precision / recall) of each preset on the split's
grooves rendered with the kit (30 s each, pooled per drum, as tests/test_calibrate.py scores them).
--toms adds 12 tom and 8 cymbal strokes to the soundcheck (WORK/KIT_NAME with toms); --takes-only
writes the takes (WORK/KIT_NAME) and stops; --score scores the given presets instead.
Variants (all fine-tuned from the shipped default's networks on the FAST schedule's 48 x 5 s
grooves unless said):

  fast       one network, 12 epochs (what `train --hits` gives before 2026-12-07)
  ens-E      every network of the shipped ensemble, E epochs each (e.g. ens-4)
  f1         fast, thresholds for the best F_1 instead of F_0.5
  ens-E-f1   ens-E, thresholds for the best F_1
  kitdata    fast, the learned trigger's grooves played by the kit's own samples, not the strokes
  kittpl     fast, templates (and the trigger's grooves) from all the kit's samples (`train --kit`)
  kittpl-ens-E  kittpl with ens-E
  ...-lrR    Adam's step R when fine-tuning instead of onset_training.FINE_TUNE_RATE (e.g. ens-4-lr0.003)
  ...-plateauW  each threshold the lowest whose F_0.5 on the fine-tuning takes is within W of the best
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from groove_bench import SOUNDCHECK
from test_calibrate import SR, _write_takes
from test_calibrate import onset_scores as scores

from rtdrums.dsp.adapt import with_adaptation
from rtdrums.dsp.onset_model import default_band_hz
from rtdrums.engine import Engine
from rtdrums.preset import load_preset
from rtdrums.training import onset_training
from rtdrums.training.kits import load_kit
from rtdrums.training.render import shipped_grooves
from rtdrums.training.train import FAST, hits_from_folder, hits_from_kit, kit_from_hits, learned_grooves, train


def features(preset, kits):
    """The FAST schedule's learned-trigger features of the preset's templates, recorded once."""
    engine = Engine(with_adaptation(replace(preset, onset_model=None), False), max_block=preset.stft.hop)
    grooves = learned_grooves(None, FAST)
    Xs, labels, takes = onset_training._record(engine, kits, grooves, FAST.model_seconds, default_band_hz(), None)
    mean, scale = onset_training._standardise(Xs, takes)
    return engine, Xs, labels, takes, mean, scale


def fitted(preset, feats, base, networks: int, epochs: int, beta: float = 0.5, rate: float | None = None):
    engine, Xs, labels, takes, mean, scale = feats
    old, onset_training.BETA = onset_training.BETA, beta
    try:
        model, _ = onset_training.fit_onset_model(engine, Xs, labels, takes, mean, scale, default_band_hz(),
                                                  start=base, networks=networks, epochs=epochs,
                                                  rate=rate or onset_training.FINE_TUNE_RATE)
    finally:
        onset_training.BETA = old
    return replace(preset, onset_model=model)


def plateau_thresholds(preset, feats, within: float):
    """The preset with each drum's threshold the lowest whose F_0.5 on the fine-tuning takes is
    within `within` of the best (onset_training picks the best itself)."""
    engine, Xs, _, takes, _, _ = feats
    m, s = preset.onset_model, engine.settings
    probs = [sum(1 / (1 + np.exp(-(np.maximum(Xs[t.start:t.stop] @ n.w1 + n.b1, 0) @ n.w2 + n.b2)))
                 for n in m.networks) / len(m.networks) for t in takes]
    retrig = max(1, -(-round(onset_training.RETRIGGER_MS / 1000 * s.sample_rate) // s.hop))
    onsets = [t.onsets for t in takes]
    out = []
    for d in range(len(m.threshold)):
        f = [onset_training._f_beta(onsets, probs, d, t, retrig, s.hop, engine.params.onset_offset, s.sample_rate)
             for t in onset_training.THRESHOLDS]
        out.append(float(next(t for t, x in zip(onset_training.THRESHOLDS, f) if x >= max(f) - within)))
    return replace(preset, onset_model=replace(m, threshold=tuple(out)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kit", type=Path)
    ap.add_argument("--variants", default="fast,ens-4,f1,kitdata,kittpl")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--work", type=Path, default=Path("/tmp/soundcheck-bench"))
    ap.add_argument("--takes-only", action="store_true")
    ap.add_argument("--toms", action="store_true", help="the soundcheck plays 12 tom and 8 cymbal strokes too")
    ap.add_argument("--score", nargs="+", metavar="PRESET_DIR")
    a = ap.parse_args()
    kit = load_kit(a.kit)
    base = load_preset("default")
    takes_dir = a.work / (kit.name + (" with toms" if a.toms else ""))
    if not takes_dir.is_dir():
        _write_takes(kit, takes_dir, SOUNDCHECK | ({"tom": 12, "cymbal": 8} if a.toms else {}))
    grooves = shipped_grooves(a.split)
    if a.takes_only:
        print(takes_dir)
        return
    if a.score:
        print(f"| {kit.name}, {a.split} | F kick (P / R) | F snare (P / R) | F hi-hat (P / R) |")
        print("|---|---|---|---|")
        for d in a.score:
            s = scores(load_preset(d), kit, grooves)
            print(f"| {d} | " + " | ".join(f"{x[0]:.3f} ({x[1]:.2f} / {x[2]:.2f})" for x in s.values()) + " |",
                  flush=True)
        return
    variants = a.variants.split(",")
    hits, _ = hits_from_folder(takes_dir, SR)
    sc_kit = kit_from_hits(hits, "soundcheck", SR)
    sc = train([hits], {}, "soundcheck", base=base)                   # templates + references
    cache = {}
    if any(v.startswith("kittpl") for v in variants):
        kit_hits, _ = hits_from_kit(kit, SR)
        cache["kittpl"] = train([kit_hits], {}, "kit-templates", base=base)

    def feats(key, preset, kits):
        if key not in cache:
            cache[key] = features(preset, kits)
        return cache[key]

    print(f"| {kit.name}, {a.split} | F kick (P / R) | F snare (P / R) | F hi-hat (P / R) | fit s |")
    print("|---|---|---|---|---|")
    for v in variants:
        parts = v.split("-")
        beta = 1.0 if "f1" in parts else 0.5
        rate = next((float(p[2:]) for p in parts if p.startswith("lr")), None)
        within = next((float(p[7:]) for p in parts if p.startswith("plateau")), None)
        parts = [p for p in parts if p != "f1" and not p.startswith(("lr", "plateau"))] or ["fast"]
        preset, key, kits = sc, "sc", [sc_kit]
        if parts[0] == "kitdata":
            key, kits = "sc-kitdata", [kit]
        elif parts[0] == "kittpl":
            preset, key, kits = cache["kittpl"], "kittpl-feats", [kit]
            parts = parts[1:] or ["fast"]
        elif parts[0] != "ens":
            parts = ["fast"]
        if parts[0] == "ens":
            networks, epochs = len(base.onset_model.networks), int(parts[1])
        else:
            networks, epochs = 1, onset_training.FINE_TUNE_EPOCHS
        f = feats(key, preset, kits)
        t0 = time.process_time()
        p = fitted(preset, f, base, networks, epochs, beta, rate)
        fit_s = time.process_time() - t0
        if within is not None:
            p = plateau_thresholds(p, f, within)
        s = scores(p, kit, grooves)
        cells = " | ".join(f"{x[0]:.3f} ({x[1]:.2f} / {x[2]:.2f})" for x in s.values())
        print(f"| {v} (thresholds {', '.join(f'{t:.2f}' for t in p.onset_model.threshold)}) | {cells} | {fit_s:.0f} |",
              flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
