"""Onset F (50 ms) per drum of presets on validation-split grooves rendered (dry, or in rooms) with
kits from folders of kit folders (e.g. soundfont kits no preset was trained on), per kit and pooled.

    python -m rtdrums.evaluation.unseen_kits PRESET[,PRESET...] KITS_DIR [KITS_DIR ...] [--rooms]

With --rooms each groove is recorded in a simulated room (rtdrums.training.rooms.vary, seed
ROOMS_SEED + groove index: rooms that neither training nor `rtdrums eval --rooms` uses), so that
settings can be chosen for rooms on validation material.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DRUMS = ("kick", "snare", "hihat")
ROOMS_SEED = 2_000_000       # + groove index; training uses seeds below 1 000 000, rtdrums eval 1 000 000 + index


def validation_renders(kit, seconds: float, rooms: bool = False) -> list:
    """The validation-split grooves played by kit (48 kHz, first `seconds`), dry or in rooms."""
    from ..training.render import render_groove, shipped_grooves
    from ..training.rooms import vary

    renders = [render_groove(g, kit, 48000, max_seconds=seconds) for g in shipped_grooves("validation")]
    return [vary(r, ROOMS_SEED + i) for i, r in enumerate(renders)] if rooms else renders


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

    p = argparse.ArgumentParser(prog="python -m rtdrums.evaluation.unseen_kits", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("presets", help="comma-separated preset names or folders")
    p.add_argument("kits", nargs="+", type=Path, help="folders of kit folders")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--rooms", action="store_true", help="record the grooves in simulated rooms")
    a = p.parse_args(argv)
    presets = {name: load_preset(name) for name in a.presets.split(",")}
    kits = sorted(k for d in a.kits for k in d.iterdir() if (k / "drumkit.xml").exists())
    total = {name: np.zeros((3, 3)) for name in presets}
    for folder in kits:
        kit = load_kit(folder)
        renders = validation_renders(kit, a.seconds, a.rooms)
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
