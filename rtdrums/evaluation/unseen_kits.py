"""Onset F (50 ms) per drum of presets on validation-split grooves rendered dry with kits from
folders of kit folders (e.g. soundfont kits no preset was trained on), per kit and pooled.

    python -m rtdrums.evaluation.unseen_kits PRESET[,PRESET...] KITS_DIR [KITS_DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DRUMS = ("kick", "snare", "hihat")


def counts(engine, renders) -> np.ndarray:
    """(3, 3): per drum, true onsets, triggers and matches (50 ms) over the renders."""
    from ..offline import separate
    from .metrics import match

    c = np.zeros((3, 3))
    for r in renders:
        engine.reset()
        ev = separate(engine, r.mix).events
        for d, name in enumerate(DRUMS):
            ref = np.sort(r.samples(name)) / r.sample_rate
            est = np.sort(ev[ev["drum"] == d]["onset"]) / r.sample_rate
            c[d] += [len(ref), len(est), len(match(ref, est))]
    return c


def f_text(c: np.ndarray, digits: int = 2) -> str:
    return " / ".join(f"{2 * m / max(a + b, 1):.{digits}f}" for a, b, m in c)


def main(argv: list[str] | None = None) -> int:
    from ..engine import Engine
    from ..preset import load_preset
    from ..training.kits import load_kit
    from ..training.render import render_groove, shipped_grooves

    p = argparse.ArgumentParser(prog="python -m rtdrums.evaluation.unseen_kits", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("presets", help="comma-separated preset names or folders")
    p.add_argument("kits", nargs="+", type=Path, help="folders of kit folders")
    p.add_argument("--seconds", type=float, default=15.0)
    a = p.parse_args(argv)
    presets = {name: load_preset(name) for name in a.presets.split(",")}
    kits = sorted(k for d in a.kits for k in d.iterdir() if (k / "drumkit.xml").exists())
    total = {name: np.zeros((3, 3)) for name in presets}
    for folder in kits:
        kit = load_kit(folder)
        renders = [render_groove(g, kit, 48000, max_seconds=a.seconds) for g in shipped_grooves("validation")]
        row = [folder.name]
        for name, preset in presets.items():
            c = counts(Engine(preset, 48000, max_block=128), renders)
            total[name] += c
            row.append(f"{name}: {f_text(c)}")
        print("  ".join(row), flush=True)
    for name, c in total.items():
        print(f"pooled {name}: F kick / snare / hi-hat {f_text(c, 3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
