"""Keep the learned trigger's fitted velocity curves for some drums only.

Training fits each drum's velocity read-out as a loudness score (a ridge regression of
log(velocity / 127)) and a monotone curve per articulation that maps the score to the velocity
(rtdrums.training.velocity_fit). The curves learn the training kits' layers and the levels at
which their open, closed and pedal hi-hats were recorded: on the kit they were fitted on they
help every drum, on kits the preset never heard they helped the kick and snare and cost the
hi-hat (docs/velocity.md, docs/default-preset.md). Every drum not kept here gets, for each of its
articulations, the curve exp(score): the score's own log-linear velocity, with no kit's levels in it.

    python -m rtdrums.training.velocity_curves PRESET_DIR kick,snare
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..preset import Preset, articulations, load_preset, save_preset
from .velocity_fit import FLOOR


def exp_curve(knots: int) -> np.ndarray:
    """(2, knots): velocity / 127 = exp(score) from the softest velocity's score up to 0 (velocity 127)."""
    x = np.linspace(np.log(FLOOR), 0.0, knots)
    return np.stack([x, np.exp(x)])


def with_curves(preset: Preset, kept: Sequence[str]) -> Preset:
    """The preset whose drums other than `kept` map their score by exp_curve instead of their
    fitted curves, in every network of the ensemble; the networks, thresholds and scores unchanged."""
    model = preset.onset_model
    if model is None or model.vel_map.size == 0:
        raise UserError(f"preset {preset.name} has no fitted velocity curves: train it with this "
                        "version of rtdrums (rtdrums train) first")
    unknown = [d for d in kept if d not in preset.drum_names]
    if unknown:
        raise UserError(f"unknown drum {', '.join(unknown)}: give some of {', '.join(preset.drum_names)}, "
                        "comma-separated (e.g. kick,snare)")
    group_art = articulations(preset)["group_art"]

    def mapped(vel_map):
        vel_map = vel_map.copy()
        for d, name in enumerate(preset.drum_names):
            if name not in kept and vel_map.size:
                vel_map[:, group_art[d]:group_art[d + 1]] = exp_curve(vel_map.shape[3])
        return vel_map

    nets = [replace(n, vel_map=mapped(n.vel_map)) for n in model.networks]
    record = {"fitted": [d for d in preset.drum_names if d in kept],
              "exp": [d for d in preset.drum_names if d not in kept]}
    out = replace(preset, onset_model=replace(nets[0], members=tuple(nets[1:])),
                  provenance={**preset.provenance, "velocity_curves": record})
    out.validate()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.training.velocity_curves", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", type=Path, help="preset folder, rewritten in place")
    p.add_argument("drums", help="comma-separated drums that keep their fitted curves (e.g. kick,snare)")
    a = p.parse_args(argv)
    kept = [d for d in a.drums.split(",") if d]
    try:
        preset = with_curves(load_preset(a.preset), kept)
        save_preset(preset, a.preset)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rec = preset.provenance["velocity_curves"]
    print(f"{a.preset}: fitted velocity curves for {', '.join(rec['fitted']) or 'no drum'}; "
          f"exp(score) for {', '.join(rec['exp']) or 'no drum'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
