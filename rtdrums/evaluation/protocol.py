"""Which templates an evaluation uses.

generic      a given preset (default: the shipped 'default'), trained on other material;
calibrated   templates trained from the evaluated kit's own isolated samples first (a drummer
             calibrating on their own kit);
left out     the generic protocol made fair on the allowed kits: a preset trained on the allowed
             acoustic kits other than the evaluated one (leave one kit out).
Trained presets take every other setting (solver, triggers, masks) from the base preset: the
shipped 'default' when there is one, else rtdrums' defaults.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..preset import Preset, load_preset, resolve_preset

KITS_ROOT = Path("/usr/share/hydrogen/data/drumkits")
ACOUSTIC_KITS = ("ForzeeStereo", "Millo_MultiLayered2", "Millo_MultiLayered3",
                 "ColomboAcousticDrumkit", "rumpf_kit_z01_h2")
ELECTRONIC_KITS = ("ElectricEmpireKit", "HardElectro1", "VariBreaks")
ALLOWED_KITS = ACOUSTIC_KITS + ELECTRONIC_KITS


def base_preset() -> Preset | None:
    """The shipped 'default' preset, or None when none is shipped."""
    try:
        resolve_preset("default")
    except UserError:
        return None
    return load_preset("default")


def generic(preset: str) -> Preset:
    return load_preset(preset)


def trained_on(kit_dirs: list[Path], sample_rate: int, name: str, base: Preset | None = None,
               schedule=None) -> Preset:
    """A preset trained on the isolated samples of every kit in kit_dirs, at sample_rate.

    Each kit gets its own templates per category, stacked (rtdrums.training.train.train with one hit set
    per kit), and the triggers are tuned on the shipped training grooves rendered with these
    kits, as `rtdrums train` does for the shipped preset (`schedule`: default FULL).
    """
    from ..dsp.stft import StftSettings
    from ..training.train import kit_hit_sets, train

    settings = (base.stft if base else StftSettings()).scaled_to(sample_rate)
    kits, hit_sets, sources = kit_hit_sets(kit_dirs, settings)
    provenance = {"sample_rate": sample_rate, "sources": sources}
    return train(hit_sets, provenance, name, settings=settings, base=base, tune_kits=kits, schedule=schedule)


def training_kits(preset: Preset) -> list[str]:
    """Names of the kits a preset's templates were trained on, from its provenance."""
    prov = preset.provenance or {}
    return [str(s.get("kit")) for s in prov.get("sources", []) if isinstance(s, dict) and s.get("kit")]


def calibrated(kit_dir: Path, sample_rate: int, base: Preset | None = None, full: bool = False) -> Preset:
    """Templates from the evaluated kit's own samples, trained as `rtdrums train --kit` trains them
    (the base's learned trigger fine-tuned; `full`: as `train --full`)."""
    from ..training.train import schedule_for

    return trained_on([Path(kit_dir)], sample_rate, f"calibrated-{Path(kit_dir).name}", base,
                      schedule_for(base, full))


def left_out_kits(kit_name: str, root: Path = KITS_ROOT) -> list[Path]:
    """The allowed acoustic kits other than kit_name."""
    return [root / k for k in ACOUSTIC_KITS if k != kit_name]


def left_out(kit_name: str, sample_rate: int, base: Preset | None = None,
             root: Path = KITS_ROOT) -> Preset:
    """A preset trained on the allowed acoustic kits other than kit_name."""
    kits = left_out_kits(kit_name, root)
    missing = [str(k) for k in kits if not k.is_dir()]
    if missing:
        raise UserError(f"training kits not found: {', '.join(missing)} (apt-get install hydrogen-drumkits)")
    return trained_on(kits, sample_rate, f"without-{kit_name}", base)
