"""The lean kernels against the reference kernels on rendered eval grooves (docs/lean-engine.md).

    python -m rtdrums.evaluation.lean_check [--kits ForzeeStereo HardElectro1] [--split test] [--seconds 30]

Each groove of the split, rendered with each kit (allowed kits only), is separated by the shipped
default preset with both sets of kernels: onset F (50 ms, pooled per drum), mean stem SI-SDR
against the true stems, the difference of the stems (dB of the reference stem's energy) and
whether the triggers are the same notes at the same samples, and how many velocities changed.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..engine import Engine
from ..offline import separate
from ..preset import load_preset
from ..training.kits import load_kit
from ..training.render import render_groove, shipped_grooves
from .metrics import match, si_sdr
from .protocol import KITS_ROOT

DRUMS = ("kick", "snare", "hihat")


def check(kits: list[str], split: str, seconds: float, preset: str = "default") -> list[dict]:
    p = load_preset(preset)
    rows = []
    for kit_name in kits:
        kit = load_kit(KITS_ROOT / kit_name)
        counts = {lean: {d: [0, 0, 0] for d in DRUMS} for lean in (False, True)}
        sdr = {lean: [] for lean in (False, True)}
        diff_db, identical, grooves, vel_diff = [], 0, 0, []
        for groove in shipped_grooves(split):
            r = render_groove(groove, kit, 48000, max_seconds=seconds)
            seps = {lean: separate(Engine(p, 48000, max_block=128, lean=lean), r.mix, 128) for lean in (False, True)}
            for lean, sep in seps.items():
                for i, d in enumerate(DRUMS):
                    ref = r.times(d)
                    est = sep.events["onset"][sep.events["drum"] == i] / 48000
                    c = counts[lean][d]
                    c[0], c[1], c[2] = c[0] + len(ref), c[1] + len(est), c[2] + len(match(ref, est))
                    if np.any(r.stems[d]):
                        sdr[lean].append(si_sdr(r.stems[d], sep.stems[:, i]))
            a, b = seps[False].stems.astype(np.float64), seps[True].stems.astype(np.float64)
            diff_db.append(float(np.max(10 * np.log10(((a - b) ** 2).sum(0) / np.maximum((a ** 2).sum(0), 1e-30) + 1e-300))))
            fields = ["onset", "emitted", "drum", "note"]
            ea, eb = seps[False].events, seps[True].events
            identical += int(np.array_equal(ea[fields], eb[fields]))
            if len(ea) == len(eb):
                vel_diff.append(np.abs(ea["velocity"] - eb["velocity"]))
            grooves += 1
        f = {lean: {d: 2 * c[2] / max(c[0] + c[1], 1) for d, c in counts[lean].items()} for lean in counts}
        dv = np.concatenate(vel_diff) if vel_diff else np.zeros(0)
        rows.append({"kit": kit_name, "grooves": grooves, "identical": identical, "notes": len(dv),
                     "vel_changed": int(np.sum(dv > 0)), "vel_max": int(dv.max()) if len(dv) else 0, "worst_diff_db": max(diff_db),
                     "f_ref": f[False], "f_lean": f[True],
                     "sisdr_ref": float(np.mean([s for s in sdr[False] if s is not None])),
                     "sisdr_lean": float(np.mean([s for s in sdr[True] if s is not None]))})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| kit | grooves | same notes at the same samples | velocities changed | worst stem difference | F kick/snare/hi-hat, reference | lean | "
             "mean stem SI-SDR, reference | lean |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fr = " / ".join(f"{r['f_ref'][d]:.3f}" for d in DRUMS)
        fl = " / ".join(f"{r['f_lean'][d]:.3f}" for d in DRUMS)
        lines.append(f"| {r['kit']} | {r['grooves']} | {r['identical']} of {r['grooves']} | "
                     f"{r['vel_changed']} of {r['notes']} (at most {r['vel_max']}) | {r['worst_diff_db']:.0f} dB | "
                     f"{fr} | {fl} | {r['sisdr_ref']:.2f} dB | {r['sisdr_lean']:.2f} dB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", nargs="+", default=["ForzeeStereo", "HardElectro1"])
    ap.add_argument("--split", default="test", choices=("validation", "test"))
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args(argv)
    print(markdown(check(args.kits, args.split, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
