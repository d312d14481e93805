"""Set the learned trigger's probability thresholds of a trained preset, one per drum.

`rtdrums train` picks each drum's threshold for the best F_0.5 on the training kits' takes. On kits
the network never heard its probabilities stay lower and those thresholds miss about half of the
snares (docs/default-preset.md); lower thresholds chosen on kits no preset was trained on recall
them. The velocity read-outs and everything else stay as trained. `--both DRUM[,DRUM]` also lets
the threshold detector trigger those drums beside the learned trigger (`detector = "both"`,
docs/presets.md), the others the learned trigger alone.

    python -m rtdrums.training.learned_thresholds PRESET_DIR 0.5,0.5,0.5 [--both kick]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from ..preset import Preset, load_preset, save_preset


def with_thresholds(preset: Preset, thresholds: Sequence[float]) -> Preset:
    """The preset with its learned trigger's thresholds replaced; the trained ones go into its provenance."""
    model = preset.onset_model
    if model is None:
        raise UserError(f"preset {preset.name} has no learned trigger: train one (rtdrums train --trigger learned)")
    if len(thresholds) != len(model.threshold) or not all(0.0 < t < 1.0 for t in thresholds):
        raise UserError(f"give {len(model.threshold)} thresholds between 0 and 1 ("
                        f"{', '.join(preset.drum_names)}), e.g. {','.join(['0.5'] * len(model.threshold))}")
    trained = preset.provenance.get("learned_thresholds", {}).get("trained", list(model.threshold))
    record = {"trained": trained, "set": [float(t) for t in thresholds]}
    return replace(preset, onset_model=replace(model, threshold=tuple(float(t) for t in thresholds)),
                   provenance={**preset.provenance, "learned_thresholds": record})


def with_both(preset: Preset, drums: Sequence[str]) -> Preset:
    """The preset with `detector = "both"` on these drums and the learned trigger alone on the others."""
    unknown = sorted(set(drums) - set(preset.drum_names))
    if unknown:
        raise UserError(f"--both {','.join(unknown)}: no such drum; give some of {', '.join(preset.drum_names)}")
    return replace(preset, drums=tuple(replace(d, detector="both" if d.name in drums else None) for d in preset.drums))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.training.learned_thresholds", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", type=Path, help="preset folder, rewritten in place")
    p.add_argument("thresholds", help="comma-separated probabilities, one per drum (kick,snare,hihat)")
    p.add_argument("--both", default="", metavar="DRUM[,DRUM]",
                   help="drums the threshold detector triggers too, beside the learned trigger")
    a = p.parse_args(argv)
    try:
        try:
            values = [float(t) for t in a.thresholds.split(",")]
        except ValueError:
            raise UserError(f"thresholds {a.thresholds!r}: give comma-separated numbers, e.g. 0.5,0.5,0.5") from None
        preset = with_thresholds(load_preset(a.preset), values)
        preset = with_both(preset, [d for d in a.both.split(",") if d])
        save_preset(preset, a.preset)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.preset}: learned-trigger thresholds {' / '.join(map(str, values))} "
          f"(trained: {' / '.join(map(str, preset.provenance['learned_thresholds']['trained']))})"
          + (f"; the threshold detector too for {a.both}" if a.both else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
