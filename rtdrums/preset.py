"""Presets: spectral templates plus every setting the engine needs, on disk as two files.

A preset is a folder with
  preset.toml    human-readable settings (format, version, STFT, solver, masks, triggers, drums,
                 provenance), and
  templates.npz  the template matrix W (n_bins x R, float32, nonnegative), loaded without pickle,
                 and the arrays of the learned trigger if the preset has one (model_*; the
                 networks 2..K of an ensemble, [onset_model] networks = K, as model2_* ...) and
                 of the autoencoder's encoder if it has one (encoder_*).
Components (columns of W) are ordered drum by drum as listed in preset.toml, then the residual
components, which absorb what is not one of the drums (toms, cymbals) and go to the residual stem.
"""

from __future__ import annotations

import math
import os
import tomllib
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import tomli_w

from .errors import UserError
from .dsp.encoder import Encoder
from .dsp.nmf import METHODS
from .dsp.onset_model import OnsetModel
from .dsp.stft import StftSettings

FORMAT = "rtdrums-preset"
VERSION = 1
SETTINGS_FILE, TEMPLATES_FILE = "preset.toml", "templates.npz"
PRESETS_DIR = Path(os.environ.get("RTDRUMS_PRESETS", Path(__file__).resolve().parent.parent / "presets"))
# trigger settings that differ by drum: a hi-hat's energy builds up over ~10 ms and its accents
# vary more, so its rises are measured further back against a lower relative threshold, and a
# slowly swelling open hat must not fire twice
DETECTORS = (None, "learned", "both")     # a drum's trigger: the learned one (default), or it and the threshold detector
DRUM_DEFAULTS = {"hihat": {"relative": 0.1, "lookback_ms": 10.7, "retrigger_ms": 90.0}}
GM_NOTES = {"kick": 36, "snare": 38, "hihat": 42, "hihat_open": 46, "hihat_pedal": 44}


@dataclass(frozen=True)
class SolverSettings:
    method: str = "kl"           # "kl", "euclidean", "projected-gradient", or "autoencoder" (the
                                 # encoder's h refined by `iterations` KL updates, 0 allowed)
    iterations: int = 20         # budget per frame
    tolerance: float = 1e-3      # early stop on the relative L1 change of h
    bands: int = 96              # solve on this many log-spaced bands (0: on every bin)
    warm_decay: float = 1.0      # previous frame's h times this is the next start
    floor: float = 1e-2          # start h at least at this share of the frame's level, so that
                                 # a newly struck drum has a start its updates can grow from
    start: str = "previous"      # each frame's solve starts from the "previous" frame's h or from
                                 # the "encoder"'s (rtdrums.dsp.encoder)

    @property
    def uses_encoder(self) -> bool:
        return self.method == "autoencoder" or self.start == "encoder"


@dataclass(frozen=True)
class TriggerSettings:
    scan_ms: float = 2.7                   # peak tracking after the threshold is crossed
    envelope_half_life_ms: float = 300.0   # decay of that recent peak
    velocity_gamma: float = 0.7            # velocity = 127 * (rise / reference) ** gamma
    jump: float = 1.3                      # and the activation must grow by this factor


@dataclass(frozen=True)
class AdaptSettings:
    """Semi-adaptive templates (rtdrums.dsp.adapt): trained templates drift towards the kit being played."""
    enabled: bool = False
    rate: float = 0.02          # blend of one frame's multiplicative update into the templates
    lower: float = 0.25         # each template bin stays within [lower, upper] x its trained value
    upper: float = 4.0
    confidence: float = 0.9     # a frame adapts a group that holds this share of the model energy
    level: float = 0.05         # ... and whose activation reaches this fraction of its reference
    free_components: int = 0    # neutral residual components that learn the room's other sounds
    interval: int = 1           # adapt at most every this many frames

    def validate(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError("[adapt] enabled must be true or false")
        if not (0 < self.rate <= 0.5 and 0 < self.lower <= 1 <= self.upper < 1e3
                and 0 < self.confidence <= 1 and 0 <= self.level < 1e3):
            raise ValueError("[adapt] needs 0 < rate <= 0.5, 0 < lower <= 1 <= upper, "
                             "0 < confidence <= 1 and level >= 0")
        if not (isinstance(self.free_components, int) and 0 <= self.free_components <= 16
                and isinstance(self.interval, int) and 1 <= self.interval <= 1000):
            raise ValueError("[adapt] free_components must be an integer 0..16 and interval 1..1000 frames")


@dataclass(frozen=True)
class DrumSettings:
    name: str
    notes: tuple[int, ...]          # MIDI note per component (e.g. closed/open/pedal hi-hat)
    labels: tuple[str, ...] = ()    # what each component was trained on
    sensitivity: float = 1.0        # > 1 triggers on softer hits
    retrigger_ms: float = 50.0      # no second trigger of this drum within this time
    relative: float = 0.2           # threshold as a fraction of the drum's recent peak
    lookback_ms: float = 5.4        # a rise is measured from the lowest level this far back
    floor: float = 0.0              # absolute threshold, as a fraction of `reference`
    crosstalk: float = 2.0          # margin on the cross-talk expected from the other groups
    reference: float = 1.0          # activation rise of a full-velocity hit (velocity 127)
    leak: tuple[float, ...] = ()    # rise of this drum per unit rise of each drum, then the residual
    scan_ms: float | None = None    # this drum's scan, instead of [trigger] scan_ms
    detector: str | None = None     # "both": the threshold detector triggers it too, beside the learned trigger

    @property
    def components(self) -> int:
        return len(self.notes)


@dataclass(frozen=True)
class Preset:
    name: str
    stft: StftSettings
    drums: tuple[DrumSettings, ...]
    W: np.ndarray = field(repr=False)        # (n_bins, R)
    residual_labels: tuple[str, ...] = ()
    solver: SolverSettings = SolverSettings()
    trigger: TriggerSettings = TriggerSettings()
    mask_exponent: float = 2.0
    residual_reference: float = 1.0          # residual activation rise of a loud tom or cymbal
    residual_leak: tuple[float, ...] = ()    # rise of the residual per unit rise of each group
    description: str = ""
    provenance: dict = field(default_factory=dict)
    onset_model: OnsetModel | None = None    # the learned trigger; None: the threshold detector
    adapt: AdaptSettings = AdaptSettings()
    autoencoder: Encoder | None = None       # the activations' encoder (rtdrums.dsp.encoder)

    @property
    def residual_components(self) -> int:
        return self.W.shape[1] - sum(d.components for d in self.drums)

    @property
    def drum_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.drums)

    def with_drum(self, name: str, **changes) -> "Preset":
        """A copy with one drum's settings changed (e.g. sensitivity)."""
        drums = tuple(replace(d, **changes) if d.name == name else d for d in self.drums)
        return replace(self, drums=drums)

    def validate(self) -> None:
        """Raise ValueError with a one-line reason for anything inconsistent."""
        try:
            self.stft.validate()
        except ValueError as e:
            raise ValueError(f"[stft] {e}") from None
        W = self.W
        if W.ndim != 2 or W.shape[0] != self.stft.n_bins:
            raise ValueError(f"{TEMPLATES_FILE}: templates have shape {W.shape}, expected ({self.stft.n_bins}, R) "
                             f"for n_fft {self.stft.n_fft}")
        _check_templates(W, self)
        if not self.drums:
            raise ValueError("no drums defined")
        names = [d.name for d in self.drums]
        if len(set(names)) != len(names) or "residual" in names:
            raise ValueError(f"drum names must be unique and not 'residual': {names}")
        if len(self.residual_leak) != len(self.drums) + 1 or any(not 0 <= x < 1e3 for x in self.residual_leak):
            raise ValueError(f"residual leak needs {len(self.drums) + 1} values >= 0")
        if self.residual_components < 0:
            raise ValueError(f"drums list {sum(d.components for d in self.drums)} components "
                             f"but the templates have only {W.shape[1]}")
        for d in self.drums:
            if d.components < 1:
                raise ValueError(f"drum {d.name} has no components (notes is empty)")
            if any(not 0 <= n <= 127 for n in d.notes):
                raise ValueError(f"drum {d.name}: MIDI notes must be 0..127, got {list(d.notes)}")
            for key in ("sensitivity", "reference"):
                if not getattr(d, key) > 0 or not math.isfinite(getattr(d, key)):
                    raise ValueError(f"drum {d.name}: {key} must be a positive number")
            if d.scan_ms is not None and not (isinstance(d.scan_ms, (int, float)) and 0 <= d.scan_ms < 1000):
                raise ValueError(f"drum {d.name}: scan_ms must be between 0 and 1000 ms (or left out)")
            if d.detector not in DETECTORS:
                raise ValueError(f"drum {d.name}: detector must be one of {', '.join(map(repr, DETECTORS[1:]))} "
                                 f"(or left out), not {d.detector!r}")
            if len(d.leak) != len(self.drums) + 1 or any(not 0 <= x < 1e3 for x in d.leak):
                raise ValueError(f"drum {d.name}: leak needs {len(self.drums) + 1} values >= 0 "
                                 f"(one per drum, then the residual)")
            if not (d.retrigger_ms >= 0 and d.floor >= 0 and d.lookback_ms >= 0 and d.crosstalk >= 0
                    and 0 <= d.relative < 1):
                raise ValueError(f"drum {d.name}: retrigger_ms, floor, lookback_ms, crosstalk >= 0 "
                                 "and 0 <= relative < 1")
        s = self.solver
        _check_encoder(self)
        if s.method not in METHODS and s.method != "autoencoder":
            raise ValueError(f"solver method {s.method!r} is not one of {', '.join(METHODS)}, autoencoder")
        if s.iterations < (0 if s.method == "autoencoder" else 1) or s.bands < 0 or not 0 < s.warm_decay <= 1 or s.tolerance < 0 or not 0 < s.floor < 1:
            raise ValueError("solver: iterations >= 1, bands >= 0, 0 < warm_decay <= 1, tolerance >= 0, 0 < floor < 1")
        t = self.trigger
        if t.scan_ms < 0 or t.envelope_half_life_ms <= 0 or t.velocity_gamma <= 0 or t.jump < 1:
            raise ValueError("trigger: scan_ms >= 0, envelope_half_life_ms > 0, velocity_gamma > 0, jump >= 1")
        if not self.mask_exponent > 0:
            raise ValueError("mask exponent must be > 0")
        self.adapt.validate()
        if self.adapt.enabled and s.method == "projected-gradient":
            raise ValueError("[adapt] needs solver method kl or euclidean (the projected-gradient "
                             "step is fixed for the trained templates)")
        if self.onset_model is not None:
            self.onset_model.validate(len(self.drums), W.shape[1], int(articulations(self)["group_art"][-2]))


def _check_encoder(p: Preset) -> None:
    """Raise ValueError if the solver settings ask for an encoder the preset lacks, or it does not fit."""
    s = p.solver
    if s.start not in ("previous", "encoder"):
        raise ValueError(f"solver start {s.start!r} is not one of previous, encoder")
    if s.uses_encoder and p.autoencoder is None:
        what = "method autoencoder" if s.method == "autoencoder" else "start encoder"
        raise ValueError(f"solver {what} needs an autoencoder, and this preset has none: "
                         f"train one with `rtdrums train --autoencoder`")
    if p.autoencoder is not None:
        p.autoencoder.validate(p.W.shape[1])


def _check_templates(W: np.ndarray, p: Preset) -> None:
    """Raise ValueError naming the first degenerate template column and its fault."""
    faults = ((np.isnan(W), "NaN"), (np.isinf(W), "infinite values"),
              (W < 0, "negative values"))
    for bad, what in faults:
        cols = np.flatnonzero(bad.any(axis=0))
        if len(cols):
            raise ValueError(f"{TEMPLATES_FILE}: template column {cols[0]} "
                             f"({_owner(p, cols[0])}) contains {what}")
    cols = np.flatnonzero(W.sum(axis=0) <= 0)
    if len(cols):
        raise ValueError(f"{TEMPLATES_FILE}: template column {cols[0]} ({_owner(p, cols[0])}) is all zero")


def _owner(p: Preset, r: int) -> str:
    names = [d.name for d in p.drums for _ in d.notes]
    return names[r] if r < len(names) else "residual"


def articulations(p: Preset) -> dict[str, np.ndarray]:
    """The components and articulations of each group, the drums then the residual (see
    onsets.detect): group_start (G + 1,) each group's first component, then R; art_start (A + 1,)
    runs of components with one training label and one MIDI note (closed, open, pedal hi-hat;
    toms, cymbals), then R; group_art (G + 1,) each group's first articulation, then A."""
    starts, group_start, group_art, r = [], [], [], 0
    groups = [(d.labels, d.notes) for d in p.drums]
    groups.append((p.residual_labels, (0,) * p.residual_components))
    for labels, notes in groups:
        group_start.append(r)
        group_art.append(len(starts))
        keys = list(zip(labels if len(labels) == len(notes) else [""] * len(notes), notes))
        starts += [r + i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
        r += len(keys)
    return {"group_start": np.array(group_start + [r], np.int64),
            "art_start": np.array(starts + [r], np.int64),
            "group_art": np.array(group_art + [len(starts)], np.int64)}


def _settings_dict(p: Preset) -> dict:
    drums = []
    for d in p.drums:
        row = {k: v for k, v in asdict(d).items() if v is not None}     # TOML has no null
        row["notes"], row["labels"], row["leak"] = list(d.notes), list(d.labels), list(d.leak)
        drums.append(row)
    return {
        "format": FORMAT, "version": VERSION, "name": p.name, "description": p.description,
        "stft": asdict(p.stft), "solver": _solver_dict(p.solver), "mask": {"exponent": p.mask_exponent},
        "trigger": asdict(p.trigger), "adapt": asdict(p.adapt), "drums": drums,
        "residual": {"components": p.residual_components, "labels": list(p.residual_labels),
                     "reference": p.residual_reference, "leak": list(p.residual_leak)},
        "provenance": p.provenance,
    } | ({} if p.onset_model is None else {"onset_model": {
        "threshold": list(p.onset_model.threshold), "retrigger_ms": p.onset_model.retrigger_ms,
        "bands": len(p.onset_model.band_hz) - 1, "hidden": int(p.onset_model.b1.shape[0])}
        | ({"networks": len(p.onset_model.networks)} if p.onset_model.members else {})}) \
      | ({} if p.autoencoder is None else {"autoencoder": {
          "bands": len(p.autoencoder.band_hz) - 1, "hidden": p.autoencoder.hidden}})


def _solver_dict(s: SolverSettings) -> dict:
    """[solver] as written: `start` only when it is not the default, so that presets without an
    encoder keep their files as before."""
    out = asdict(s)
    if s.start == SolverSettings.start:
        del out["start"]
    return out


def save_preset(p: Preset, folder: str | os.PathLike) -> Path:
    """Write preset.toml and templates.npz into folder (created if needed); returns the folder."""
    p.validate()
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp_toml, tmp_npz = folder / (SETTINGS_FILE + ".part"), folder / "templates.part.npz"
        tmp_toml.write_text(tomli_w.dumps(_settings_dict(p)))
        m = p.onset_model
        model = {} if m is None else {f"model_{a}": getattr(m, a) for a in OnsetModel.ARRAYS}
        model |= {} if m is None else {f"model{k}_{a}": getattr(n, a) for k, n in enumerate(m.members, 2)
                                       for a in OnsetModel.NETWORK_ARRAYS}
        e = p.autoencoder
        model |= {} if e is None else {f"encoder_{a}": getattr(e, a) for a in Encoder.ARRAYS}
        np.savez_compressed(tmp_npz, W=p.W.astype(np.float32), **model)
        os.replace(tmp_npz, folder / TEMPLATES_FILE)
        os.replace(tmp_toml, folder / SETTINGS_FILE)
    except OSError as e:
        raise UserError(f"cannot write preset to {folder}: {e.strerror}; choose a writable folder") from None
    return folder


def resolve_preset(name_or_path: str | os.PathLike) -> Path:
    """A preset folder from a path, or from the name of a shipped preset."""
    path = Path(name_or_path)
    if (path / SETTINGS_FILE).is_file():
        return path
    shipped = PRESETS_DIR / str(name_or_path)
    if (shipped / SETTINGS_FILE).is_file():
        return shipped
    available = sorted(p.name for p in PRESETS_DIR.glob("*") if (p / SETTINGS_FILE).is_file())
    if path.is_dir():
        raise UserError(f"{path} has no {SETTINGS_FILE}: not a preset folder (train one with `rtdrums train`)")
    raise UserError(f"no preset {str(name_or_path)!r}: give a preset folder or one of: "
                    f"{', '.join(available) or '(none shipped)'}")


def load_preset(name_or_path: str | os.PathLike = "default") -> Preset:
    """Load and validate a preset; any problem is a one-line UserError."""
    folder = resolve_preset(name_or_path)
    try:
        with open(folder / SETTINGS_FILE, "rb") as f:
            cfg = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"corrupt preset settings {folder / SETTINGS_FILE}: {e}") from None
    try:
        with np.load(folder / TEMPLATES_FILE, allow_pickle=False) as npz:
            W = np.array(npz["W"], dtype=np.float64)
            model = {a: np.array(npz[f"model_{a}"], np.float64) if f"model_{a}" in npz.files
                     or a not in OnsetModel.OPTIONAL else np.zeros(OnsetModel.OPTIONAL[a])
                     for a in OnsetModel.ARRAYS} if "onset_model" in cfg else None
            if model is not None:
                model["members"] = tuple({a: np.array(npz[f"model{k}_{a}"], np.float64) if f"model{k}_{a}" in npz.files
                                          or a not in OnsetModel.OPTIONAL else np.zeros(OnsetModel.OPTIONAL[a])
                                          for a in OnsetModel.NETWORK_ARRAYS}
                                         for k in range(2, _networks(cfg["onset_model"]) + 1))
            encoder = Encoder(**{a: np.array(npz[f"encoder_{a}"], np.float64) for a in Encoder.ARRAYS}) \
                if "autoencoder" in cfg else None
    except FileNotFoundError:
        raise UserError(f"preset {folder} has no {TEMPLATES_FILE}; retrain it with `rtdrums train`") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise UserError(f"corrupt preset templates {folder / TEMPLATES_FILE}: {e}") from None
    try:
        preset = replace(_from_settings(cfg, W, model), autoencoder=encoder)
        preset.validate()
    except (KeyError, TypeError, ValueError) as e:
        msg = f"missing setting {e}" if isinstance(e, KeyError) else str(e)
        raise UserError(f"invalid preset {folder}: {msg}") from None
    return preset


def _table(cls, values: dict, where: str):
    """cls(**values), naming unknown keys in one line instead of a TypeError."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown setting {', '.join(unknown)} in [{where}]")
    return cls(**values)


def _from_settings(cfg: dict, W: np.ndarray, model: dict[str, np.ndarray] | None = None) -> Preset:
    if cfg.get("format") != FORMAT:
        raise ValueError(f"not an rtdrums preset (format = {cfg.get('format')!r})")
    if cfg.get("version") != VERSION:
        raise ValueError(f"preset version {cfg.get('version')} is not supported (this rtdrums reads version {VERSION})")
    drums = tuple(_table(DrumSettings, {**d, "notes": tuple(d["notes"]), "labels": tuple(d.get("labels", ())),
                                        "leak": tuple(d.get("leak", [0.0] * (len(cfg["drums"]) + 1)))}, "drums")
                  for d in cfg["drums"])
    residual = cfg.get("residual", {})
    preset = Preset(
        name=cfg["name"], description=cfg.get("description", ""),
        stft=_table(StftSettings, cfg["stft"], "stft"),
        solver=_table(SolverSettings, cfg.get("solver", {}), "solver"),
        trigger=_table(TriggerSettings, cfg.get("trigger", {}), "trigger"),
        adapt=_table(AdaptSettings, cfg.get("adapt", {}), "adapt"),
        mask_exponent=float(cfg.get("mask", {}).get("exponent", 2.0)),
        drums=drums, residual_labels=tuple(residual.get("labels", ())), W=W,
        residual_reference=float(residual.get("reference", 1.0)),
        residual_leak=tuple(residual.get("leak", [0.0] * (len(drums) + 1))),
        provenance=cfg.get("provenance", {}),
        onset_model=None if model is None else _onset_model(cfg["onset_model"], model))
    if "components" in residual and residual["components"] != preset.residual_components:
        raise ValueError(f"residual.components = {residual['components']} but the templates leave "
                         f"{preset.residual_components}")
    return preset


def _networks(settings: dict) -> int:
    """[onset_model] networks: how many networks the learned trigger averages (1 when absent)."""
    k = settings.get("networks", 1)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"[onset_model] networks = {k!r}: give a whole number >= 1")
    return k


def _onset_model(settings: dict, arrays: dict) -> OnsetModel:
    unknown = sorted(set(settings) - {"threshold", "retrigger_ms", "bands", "hidden", "networks"})
    if unknown:
        raise ValueError(f"unknown setting {', '.join(unknown)} in [onset_model]")
    first = OnsetModel(**{a: v for a, v in arrays.items() if a != "members"},
                       threshold=tuple(float(t) for t in settings["threshold"]),
                       retrigger_ms=float(settings.get("retrigger_ms", 30.0)))
    return replace(first, members=tuple(replace(first, **m) for m in arrays.get("members", ())))
