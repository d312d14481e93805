"""The bundled demo: a short drum recording rendered with exact ground truth.

`python -m rtdrums.demo_data KIT_DIR` re-creates rtdrums/data/demo/ from a Groove MIDI Dataset
validation groove and a Hydrogen kit: groove.flac (mono, 48 kHz, 16 bit) and onsets.csv
(time_s,drum,note,velocity of every kick, snare and hi-hat hit).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

DEMO_DIR = Path(__file__).parent / "data" / "demo"
DEMO_AUDIO, DEMO_ONSETS = DEMO_DIR / "groove.flac", DEMO_DIR / "onsets.csv"
DEMO_GROOVE = "drummer3_session1_7_rock_105_beat_4-4.mid"
DEMO_SECONDS = 12.0


def make_demo(kit_dir: str, out: Path = DEMO_DIR) -> None:
    import soundfile as sf

    from .training.kits import load_kit
    from .training.render import GROOVE_DIR, render_groove

    kit = load_kit(kit_dir)
    r = render_groove(GROOVE_DIR / "validation" / DEMO_GROOVE, kit, 48000, max_seconds=DEMO_SECONDS)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / DEMO_AUDIO.name, r.mix, r.sample_rate, subtype="PCM_16")
    with open(out / DEMO_ONSETS.name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "drum", "note", "velocity"])
        for o in r.onsets:
            if o.drum in ("kick", "snare", "hihat"):
                w.writerow([f"{o.time_s:.6f}", o.drum, o.note, o.velocity])


def read_onsets(path: Path = DEMO_ONSETS) -> dict[str, np.ndarray]:
    """drum -> sorted onset times (s) of the demo's ground truth."""
    out: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["drum"], []).append(float(row["time_s"]))
    return {d: np.array(sorted(t)) for d, t in out.items()}


if __name__ == "__main__":
    make_demo(sys.argv[1])
