"""Stem SI-SDR of score-informed against uninformed separation on rendered grooves.

    python -m rtdrums.evaluation.score_eval [--kits K ...] [--grooves N] [--seconds S] [--split S]
           [--templates take preset]

Renders the first N grooves of a split (default test) with each kit (rtdrums.training.render),
separates each mix with the streaming engine (`separate`), with the exact score (`separate
--score`), with the score moved by SHIFT_S and SHIFT_DROP of its notes removed, and with
SHIFT_DROP as many extra notes; the informed methods once per --templates choice (the preset's
templates, the default, and the take's, templates="take": same renders and scores, one run;
extra notes with the first choice only; the rows of later choices name it); prints one row per
take and the medians, plus the ideal ratio mask's SI-SDR (the true stems' magnitudes, same frames
and mask exponent) as the ceiling of any masking method.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..engine import Engine
from ..offline import separate
from ..preset import load_preset
from .. import score_informed as si
from ..training.kits import load_kit
from ..training.render import render_groove, shipped_grooves
from .metrics import si_sdr

KIT_DIR = Path("/usr/share/hydrogen/data/drumkits")
DRUMS = ("kick", "snare", "hihat")
SHIFT_S, SHIFT_DROP = 0.030, 0.05


def ideal_mask(r, preset) -> np.ndarray:
    s = preset.stft.scaled_to(r.sample_rate)
    n = (len(r.mix) + s.synthesis) // s.hop + 1
    X = si.frame_spectra(r.mix, s, 0, n)
    mags = {k: np.abs(si.frame_spectra(r.stems[k], s, 0, n)) ** preset.mask_exponent
            for k in (*DRUMS, "residual")}
    den = np.maximum(sum(mags.values()), 1e-30)
    return si.synthesise(X, [mags[d] / den for d in DRUMS], s, len(r.mix))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kits", nargs="+", default=["ElectricEmpireKit", "HardElectro1", "VariBreaks"])
    ap.add_argument("--grooves", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--split", default="test", choices=("validation", "test"))
    ap.add_argument("--templates", nargs="+", default=["preset", "take"], choices=("take", "preset"))
    a = ap.parse_args()
    preset = load_preset(a.preset)
    tag = lambda m, tm: m if tm == a.templates[0] else f"{m} ({tm} templates)"
    rows = {k: [] for k in ["uninformed"] + [tag(m, tm) for tm in a.templates for m in ("informed", "shifted")]
            + ["extra notes", "ideal mask"]}
    rng = np.random.default_rng(0)
    print("kit | groove | method | kick | snare | hihat | offset found (ms)")
    for kit_name in a.kits:
        kit = load_kit(KIT_DIR / kit_name)
        for g in shipped_grooves(a.split)[:a.grooves]:
            r = render_groove(g, kit, sample_rate=48000, max_seconds=a.seconds)
            notes = [n for n in si.read_score(g, preset) if n.time_s <= len(r.mix) / 48000]
            moved = [replace(n, time_s=n.time_s + SHIFT_S) for n in notes if rng.random() >= SHIFT_DROP]
            seconds = len(r.mix) / 48000
            drums = [n for n in notes if n.drum < len(DRUMS)]
            extra = sorted(notes + [replace(drums[i], time_s=float(t)) for i, t in zip(
                rng.integers(0, len(drums), max(1, round(SHIFT_DROP * len(notes)))),
                rng.uniform(0.1, seconds - 0.5, max(1, round(SHIFT_DROP * len(notes)))))], key=lambda n: n.time_s)
            out = [("uninformed", separate(Engine(preset, 48000), r.mix).stems, None)]
            for tm in a.templates:
                for m, sc in (("informed", notes), ("shifted", moved)):
                    res = si.separate_informed(r.mix, 48000, preset, sc, templates=tm)
                    out.append((tag(m, tm), res.stems, res.offset_s))
            res = si.separate_informed(r.mix, 48000, preset, extra, templates=a.templates[0])
            out += [("extra notes", res.stems, res.offset_s), ("ideal mask", ideal_mask(r, preset), None)]
            for method, stems, off in out:
                vals = [si_sdr(r.stems[d], stems[:, i]) for i, d in enumerate(DRUMS)]
                rows[method].append(vals)
                print(f"{kit_name} | {g.stem} | {method} | " + " | ".join(f"{v:.1f}" for v in vals)
                      + f" | {'' if off is None else f'{off * 1000:+.1f}'}", flush=True)
    print("\nmedian over takes | kick | snare | hihat")
    for method, vals in rows.items():
        print(f"{method} | " + " | ".join(f"{v:.1f}" for v in np.median(np.array(vals), axis=0)))


if __name__ == "__main__":
    main()
