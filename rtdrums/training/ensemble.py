"""A learned trigger of K networks, and the extra networks that make one for a preset.

Retrained from scratch on the same data, the learned trigger's F on kits it never heard moves
more between seeds than between the settings tried (docs/default-preset.md): one network is a
draw. An ensemble averages the probabilities (and velocities) of K networks trained with different
seeds on the same features (rtdrums.dsp.onset_model); the engine runs all K in its block call.

    python -m rtdrums.training.ensemble join OUT PRESET_A PRESET_B [...]
    python -m rtdrums.training.ensemble network OUT --base PRESET --kit KIT [--kit ...]
        [--trigger-kit DIR] --seed S [--every 3] [--rooms 0.5] [--hard-negatives W] [--hat-takes N]

`join` writes PRESET_A with the networks of all the presets (an ensemble among them contributes
all of its own), keeping PRESET_A's thresholds and everything else; the presets must share
templates, analysis and solver settings, drums and the learned trigger's bands and hidden size
(one line names the first difference). `network` retrains only the base's learned trigger, on the
base's templates and tuning, from a seed, on every `every`-th of the model grooves starting at
seed % every (so three seeds cover them all), played by the kits as `rtdrums train` orders them;
the base's thresholds are kept, so that the result joins the base.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..preset import Preset, load_preset, save_preset


def _same_edges(a: np.ndarray, b: np.ndarray) -> bool:
    """Band edges equal up to rounding: numpy versions compute geomspace's edges a few ulp apart."""
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=0.0)


def mismatch(a: Preset, b: Preset) -> str | None:
    """What keeps b's learned trigger from reading a's features, or None."""
    if b.onset_model is None:
        return "has no learned trigger"
    checks = (("templates", a.W.shape == b.W.shape and np.array_equal(a.W, b.W)),
              ("analysis settings", a.stft == b.stft), ("solver settings", a.solver == b.solver),
              ("drums", [(d.name, d.components, d.labels) for d in a.drums]
               == [(d.name, d.components, d.labels) for d in b.drums]
               and a.residual_labels == b.residual_labels),
              ("learned-trigger bands", _same_edges(a.onset_model.band_hz, b.onset_model.band_hz)
               and _same_edges(a.onset_model.short_hz, b.onset_model.short_hz)),
              ("hidden size", a.onset_model.b1.shape == b.onset_model.b1.shape))
    return next((f"differs in its {what}" for what, same in checks if not same), None)


def join(presets: Sequence[Preset], names: Sequence[str] | None = None) -> Preset:
    """The first preset with the networks of all of them; a UserError names the first misfit."""
    names = list(names or [p.name for p in presets])
    first = presets[0]
    if first.onset_model is None:
        raise UserError(f"preset {names[0]} has no learned trigger: train one (rtdrums train --trigger learned)")
    for p, name in zip(presets[1:], names[1:]):
        why = mismatch(first, p)
        if why:
            raise UserError(f"preset {name} {why} from {names[0]}: an ensemble needs networks on the same features")
    m = first.onset_model
    shared = dict(threshold=m.threshold, retrigger_ms=m.retrigger_ms, members=(),
                  band_hz=m.band_hz, short_hz=m.short_hz)     # the first's edges, exactly
    nets = [replace(n, **shared) for p in presets for n in p.onset_model.networks]
    record = {"networks": len(nets), "from": [
        {"preset": name, "networks": len(p.onset_model.networks),
         "learned_trigger": p.provenance.get("learned_trigger", {})} for p, name in zip(presets, names)]}
    out = replace(first, onset_model=replace(nets[0], members=tuple(nets[1:])),
                  provenance={**first.provenance, "ensemble": record})
    out.validate()
    return out


def train_network(base: Preset, kits: Sequence, trigger_kits: Sequence, seed: int, every: int = 3,
                  rooms: float = 0.5, hard_negative_weight: float | None = None, hat_takes: int = 0) -> Preset:
    """base with its learned trigger retrained from scratch (seed) on its own templates and tuning,
    on every `every`-th model groove from seed % every, and `hat_takes` more takes of open-hat
    windows played by all the kits in turn (onset_training.hat_takes); base's thresholds kept.
    hard_negative_weight: as train_onset_model's (None: its default)."""
    from . import onset_training
    from .onset_training import model_grooves, train_onset_model
    from .train import model_kit_order

    if base.onset_model is None:
        raise UserError(f"preset {base.name} has no learned trigger to retrain")
    grooves = model_grooves()[seed % every::every]
    order = model_kit_order(kits, trigger_kits, len(grooves))
    extra, extra_kits = onset_training.hat_takes(list(kits) + list(trigger_kits), hat_takes, seed)
    trained = train_onset_model(base, order + extra_kits, grooves + extra,
                                rooms=rooms, seed=seed, **({} if hard_negative_weight is None
                                                           else {"hard_negative_weight": hard_negative_weight}))
    record = {**trained.provenance["learned_trigger"], "seed": seed, "every": every, "hat_takes": hat_takes,
              "first_groove": seed % every, "trained_thresholds": list(trained.onset_model.threshold)}
    model = replace(trained.onset_model, threshold=base.onset_model.threshold)
    return replace(trained, onset_model=model, provenance={**trained.provenance, "learned_trigger": record})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtdrums.training.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("join", help="one preset with the networks of several")
    j.add_argument("out", type=Path)
    j.add_argument("presets", nargs="+", help="preset names or folders; the first gives everything but the extra networks")
    n = sub.add_parser("network", help="retrain only a preset's learned trigger, from a seed")
    n.add_argument("out", type=Path)
    n.add_argument("--base", required=True, help="preset whose templates and tuning the network reads")
    n.add_argument("--kit", action="append", required=True, type=Path, help="a training kit (repeat)")
    n.add_argument("--trigger-kit", action="append", default=[], type=Path,
                   help="a folder of kit folders that play half of the grooves (as rtdrums train)")
    n.add_argument("--seed", type=int, required=True)
    n.add_argument("--every", type=int, default=3, help="train on every n-th model groove (default 3)")
    n.add_argument("--rooms", type=float, default=0.5, help="share of grooves in simulated rooms (default 0.5)")
    n.add_argument("--hard-negatives", type=float, default=None, metavar="W",
                   help="loss weight of a drum's silence where another drum strikes (default: the training's)")
    n.add_argument("--hat-takes", type=int, default=0, metavar="N",
                   help="N more takes: open-hat windows played by all the kits in turn (default 0)")
    a = p.parse_args(argv)
    try:
        if a.command == "join":
            if len(a.presets) < 2:
                raise UserError("give at least two presets to join")
            out = join([load_preset(x) for x in a.presets], a.presets)
        else:
            from .kits import load_kit
            from .soundfont_kits import kit_folders
            if a.every < 1 or a.seed < 0 or not 0.0 <= a.rooms <= 1.0:
                raise UserError("--every needs a whole number >= 1, --seed >= 0 and --rooms between 0 and 1")
            if a.hard_negatives is not None and not a.hard_negatives > 0:
                raise UserError("--hard-negatives needs a weight > 0 (1: no extra weight)")
            if a.hat_takes < 0:
                raise UserError("--hat-takes needs a whole number >= 0")
            out = train_network(load_preset(a.base), [load_kit(k) for k in a.kit],
                                [load_kit(f) for d in a.trigger_kit for f in kit_folders(d)],
                                a.seed, a.every, a.rooms, a.hard_negatives, a.hat_takes)
        save_preset(out, a.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: learned trigger of {len(out.onset_model.networks)} network(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
