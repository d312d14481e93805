"""A drummer's soundcheck simulated from a kit's samples: one take per drum, strokes soft to loud.

`rtdrums train --hits` learns from such a folder (kick/, snare/, hihat/, hihat_open/, ...; one
recording per drum); a simulated one, from a Hydrogen kit whose grooves can also be rendered with
exact onsets, lets the training be measured on grooves of the same kit (docs/training-speed.md).
Each stroke is the kit's sample at a velocity spread evenly from SOFT to 127 (as a drummer
playing "soft to loud" does), scaled as a rendered groove scales it (rtdrums.training.render), the strokes
PAUSE_S apart (give or take a quarter) over a quiet room noise; tails ring into the next stroke.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .render import choose_instrument, velocity_gain

FOLDERS = {"kick": "kick", "snare": "snare", "hihat_closed": "hihat", "hihat_open": "hihat_open",
           "hihat_pedal": "hihat_pedal", "tom": "tom", "cymbal": "cymbal"}
NOTES = {"kick": 36, "snare": 38, "hihat_closed": 42, "hihat_open": 46, "hihat_pedal": 44, "tom": 45,
         "cymbal": 49}             # the groove note whose instrument a role's take plays
SOFT = 30                 # the softest stroke's MIDI velocity
PAUSE_S = 0.6             # from one stroke to the next
NOISE = 3e-5              # room noise (RMS, full scale 1)


def soundcheck_take(kit, role: str, strokes: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One take of `strokes` strokes, soft to loud, of the instrument a groove plays for the
    role's plain stroke (the snare's head, not its side-stick; rtdrums.training.render.choose_instrument)."""
    inst, _ = choose_instrument(kit, NOTES[role])
    velocities = np.linspace(SOFT, 127, strokes).round().astype(int)
    starts = np.cumsum(np.r_[0.3, rng.uniform(0.75, 1.25, strokes - 1) * PAUSE_S])
    sounds = [kit.sample(inst, v / 127.0, sample_rate) * np.float32(velocity_gain(v)) for v in velocities]
    at = (starts * sample_rate).astype(int)
    out = np.zeros(max(a + len(s) for a, s in zip(at, sounds)) + sample_rate // 4, np.float32)
    for a, s in zip(at, sounds):
        out[a:a + len(s)] += s
    return out + rng.normal(0, NOISE, len(out)).astype(np.float32)


def write_soundcheck(kit, folder: str | Path, strokes: int = 12, sample_rate: int = 48000,
                     roles=tuple(FOLDERS), seed: int = 0) -> Path:
    """A soundcheck folder for `rtdrums train --hits`: folder/<drum>/take.wav for every role the
    kit has (a loaded Kit); returns the folder."""
    import soundfile as sf

    root = Path(folder)
    rng = np.random.default_rng(seed)
    for role in roles:
        if not kit.by_role(role):
            continue
        (root / FOLDERS[role]).mkdir(parents=True, exist_ok=True)
        sf.write(root / FOLDERS[role] / "take.wav", soundcheck_take(kit, role, strokes, sample_rate, rng),
                 sample_rate, subtype="FLOAT")
    return root


def onset_scores(preset, kit, split: str = "test", seconds: float = 30.0) -> dict[str, tuple[float, float, float]]:
    """Per drum (F, precision, recall) of the preset's triggers at 50 ms on the kit's renders of a
    groove split (first `seconds` of each), the engine run in blocks of 128 as live."""
    import mir_eval

    from ..engine import Engine
    from ..evaluation.metrics import counts_to_prf
    from ..offline import separate
    from .render import render_groove, shipped_grooves

    engine = Engine(preset, 48000, max_block=128)
    counts = {d: np.zeros(3, np.int64) for d in engine.drum_names}
    for groove in shipped_grooves(split):
        r = render_groove(groove, kit, 48000, max_seconds=seconds)
        engine.reset()
        ev = separate(engine, r.mix, 128).events
        for d, name in enumerate(engine.drum_names):
            ref, est = r.times(name), ev["onset"][ev["drum"] == d] / 48000
            counts[name] += (len(ref), len(est), len(mir_eval.util.match_events(ref, est, 0.05)))
    return {d: tuple(counts_to_prf(*(int(x) for x in c))[k] for k in ("f", "precision", "recall"))
            for d, c in counts.items()}


def main(argv: list[str] | None = None) -> int:
    """python -m rtdrums.training.soundcheck KIT_DIR OUT_DIR [STROKES]: write a soundcheck;
    python -m rtdrums.training.soundcheck --score KIT_DIR PRESET...: F (P / R) on the kit's test grooves."""
    import sys

    from .kits import load_kit
    from ..preset import load_preset

    args = sys.argv[1:] if argv is None else argv
    if args[0] == "--score":
        kit = load_kit(args[1])
        for name in args[2:]:
            scores = onset_scores(load_preset(name), kit)
            print(f"{name} on {kit.name}: " + ", ".join(f"{d} {f:.3f} ({p:.2f} / {r:.2f})"
                                                       for d, (f, p, r) in scores.items()), flush=True)
        return 0
    kit = load_kit(args[0])
    write_soundcheck(kit, args[1], int(args[2]) if len(args) > 2 else 12)
    print(f"wrote a soundcheck of {kit.name} into {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
