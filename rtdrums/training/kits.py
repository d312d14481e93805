"""Hydrogen drum kits: parse drumkit.xml, infer each instrument's role, decode its samples.

A Hydrogen kit is a folder with a drumkit.xml that lists instruments; each instrument has
velocity layers (a sample file, a velocity range [min, max] in 0..1 and a gain). Three layouts
occur and all are read:
  * oldest: the instrument has a <filename> and no layers (one layer over the whole range);
  * 0.9.x: <layer> elements directly inside <instrument>;
  * 1.x: <layer> elements inside <instrumentComponent> (only the first component with usable
    layers is used; its gain and the kit's component volume multiply the layer gain).
Tags may carry the http://www.hydrogen-music.org/drumkit namespace; both <license> and
<licence> are read.

Samples (WAV or FLAC, any rate, mono or stereo) are decoded on first use and cached per sample
rate: mixed to mono by the mean of the channels, resampled with scipy.signal.resample_poly, and
trimmed of leading silence (everything before the first sample within ONSET_DB of the peak), so
index 0 of every sample is the onset of the hit. Layer files missing from the folder are skipped
and noted in Kit.skipped, as Hydrogen does; a file that exists but cannot be read is an error.

Run `python -m rtdrums.training.kits KIT_FOLDER...` to print each instrument's role and layers.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..errors import UserError

ROLES = ("kick", "snare", "hihat_closed", "hihat_open", "hihat_pedal", "tom", "cymbal", "other")
ONSET_DB = -60.0            # leading samples quieter than this (re the sample's peak) are cut

# General MIDI percussion notes -> role (used when the instrument name says nothing).
GM_ROLES = {35: "kick", 36: "kick", 37: "snare", 38: "snare", 40: "snare",
            42: "hihat_closed", 44: "hihat_pedal", 46: "hihat_open",
            **{n: "tom" for n in (41, 43, 45, 47, 48, 50)},
            **{n: "cymbal" for n in (49, 51, 52, 53, 55, 57, 59)}}

# Keywords, matched against the start of a name's words (so "tom" matches "tomhi" but not
# "custom"); the short abbreviations must match a whole word.
_HAT_WORDS, _HAT_ABBR = ("hat", "hihat"), {"hh", "chh", "ohh", "phh"}
_OPEN_WORDS, _OPEN_ABBR = ("open", "semiopen"), {"op", "ohh", "oh"}
_PEDAL_WORDS, _PEDAL_ABBR = ("pedal", "foot"), {"pd", "phh", "ped", "chick"}
_CYMBAL_WORDS = ("crash", "ride", "china", "splash", "cymbal")
_CYMBAL_ABBR = {"cc", "rc", "cy", "cym"}
_TOM_WORDS, _TOM_ABBR = ("tom", "floortom"), {"ft"}
_KICK_WORDS, _KICK_ABBR = ("kick", "bassdrum"), {"bd", "kik", "kck"}
_SNARE_WORDS = ("snare", "rim", "sidestick", "crossstick", "xstick")
_SNARE_ABBR = {"sd", "sn", "snr"}


def name_words(text: str) -> list[str]:
    """Lower-case words of a name: camelCase, digits and punctuation split ("tomHi2" -> tom, hi)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return re.findall(r"[a-z]+", text.lower())


def _has(words: list[str], prefixes: tuple[str, ...], exact: set[str] = frozenset()) -> bool:
    return any(w.startswith(prefixes) or w in exact for w in words)


def _hat_role(words: list[str]) -> str:
    if _has(words, _OPEN_WORDS, _OPEN_ABBR):
        return "hihat_open"
    if _has(words, _PEDAL_WORDS, _PEDAL_ABBR):
        return "hihat_pedal"
    return "hihat_closed"


def _role_from_words(words: list[str], note: int | None) -> str | None:
    joined = "".join(words)
    if _has(words, _HAT_WORDS, _HAT_ABBR) or "hihat" in joined:
        return _hat_role(words)
    if _has(words, _CYMBAL_WORDS, _CYMBAL_ABBR):
        return "cymbal"
    if _has(words, _TOM_WORDS, _TOM_ABBR):
        return "tom"
    if _has(words, _KICK_WORDS, _KICK_ABBR) or "bassdrum" in joined:
        return "kick"
    if _has(words, _SNARE_WORDS, _SNARE_ABBR):
        return "snare"
    if "stick" in words:  # a side stick on most kits, but "sticks clicked together" (GM 39) on some
        return GM_ROLES.get(note, "other") if note is not None else "snare"
    return None


def infer_role(name: str, note: int | None = None, filenames: tuple[str, ...] = ()) -> str:
    """Role of an instrument: from its name, else its MIDI note (GM), else its sample file names."""
    role = _role_from_words(name_words(name), note)
    if role is None and note is not None:
        role = GM_ROLES.get(note)
    for fn in filenames if role is None else ():
        role = _role_from_words(name_words(Path(fn).stem), None)
        if role is not None:
            break
    return role or "other"


@dataclass(frozen=True)
class Layer:
    """One velocity layer: the sample at `path` plays for velocities in [min, max] (0..1)."""
    min: float
    max: float
    gain: float
    path: Path


@dataclass(frozen=True)
class Instrument:
    """A kit instrument. gain = Hydrogen's volume x gain; gm_note = its midiOutNote or None."""
    name: str
    role: str
    gm_note: int | None
    gain: float
    mute_group: int
    layers: tuple[Layer, ...]

    def layer_for(self, velocity01: float, rng: np.random.Generator | None = None) -> Layer:
        """The layer whose [min, max] holds the velocity (nearest range if none does).

        Where ranges overlap, the first matching layer, or a random one if `rng` is given.
        """
        v = float(np.clip(velocity01, 0.0, 1.0))
        hits = [ly for ly in self.layers if ly.min <= v <= ly.max]
        if not hits:
            return min(self.layers, key=lambda ly: min(abs(v - ly.min), abs(v - ly.max)))
        return hits[int(rng.integers(len(hits)))] if rng is not None and len(hits) > 1 else hits[0]


@dataclass(frozen=True)
class Kit:
    """A loaded Hydrogen kit. skipped: notes on layers/instruments left out (missing files)."""
    name: str
    path: Path
    license: str
    instruments: tuple[Instrument, ...]
    skipped: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_audio(cls, name: str, layers: dict[str, list[np.ndarray]], sample_rate: int,
                   license: str = "") -> "Kit":
        """A kit of samples in memory: one instrument per role, named after it, whose velocity
        layers are the given sounds, quietest first, each covering an equal share of velocities.
        The samples are taken to be at sample_rate and render only at that rate."""
        root = Path(f"<{name}>")
        kit = cls(name, root, license, tuple(
            Instrument(role, role, None, 1.0, -1, tuple(
                Layer(i / len(sounds), (i + 1) / len(sounds), 1.0, root / role / str(i))
                for i in range(len(sounds))))
            for role, sounds in layers.items() if sounds))
        for role, sounds in layers.items():
            for i, audio in enumerate(sounds):
                kit._cache[(root / role / str(i), int(sample_rate))] = \
                    np.ascontiguousarray(_trim_lead(np.asarray(audio, np.float32)))
        return kit

    def by_role(self, role: str) -> list[Instrument]:
        """Instruments with this role, in kit order."""
        if role not in ROLES:
            raise UserError(f"unknown drum role {role!r}: use one of {', '.join(ROLES)}")
        return [i for i in self.instruments if i.role == role]

    def instrument(self, name: str) -> Instrument:
        """The instrument called `name`."""
        for inst in self.instruments:
            if inst.name == name:
                return inst
        raise UserError(f"kit {self.name!r} has no instrument {name!r}: "
                        f"use one of {', '.join(i.name for i in self.instruments)}")

    def layer_audio(self, layer: Layer, sample_rate: int) -> np.ndarray:
        """Decoded layer sample: float32 mono at `sample_rate`, onset at index 0, no gain applied.

        Cached; treat the returned array as read-only.
        """
        key = (layer.path, int(sample_rate))
        if key not in self._cache:
            if not layer.path.is_file() and any(k[0] == layer.path for k in self._cache):
                raise UserError(f"kit {self.name!r} holds its samples in memory at another rate "
                                f"than {sample_rate} Hz: render it at the rate it was made at")
            self._cache[key] = _decode(layer.path, int(sample_rate), self.name)
        return self._cache[key]

    def sample(self, instrument: Instrument | str, velocity01: float, sample_rate: int = 48000,
               rng: np.random.Generator | None = None, samples: int | None = None) -> np.ndarray:
        """The sample this instrument plays at `velocity01`, times layer gain x instrument gain;
        its first `samples` only if given."""
        inst = self.instrument(instrument) if isinstance(instrument, str) else instrument
        layer = inst.layer_for(velocity01, rng)
        return (self.layer_audio(layer, sample_rate)[:samples] * np.float32(layer.gain * inst.gain))

    def forget_decoded(self) -> None:
        """Free the samples decoded from files (decoded again when next played); samples given in
        memory (from_audio) stay."""
        for key in [k for k in self._cache if k[0].is_file()]:
            del self._cache[key]

    def hits(self, role: str, sample_rate: int = 48000,
             samples: int | None = None) -> list[tuple[np.ndarray, float]]:
        """(audio, velocity01) for every layer of every instrument with this role.

        audio is as from sample() (gains applied), its first `samples` only if given (a copy: a
        cymbal's 12 s tail is not held); velocity01 is the middle of the layer's range.
        Silent layers are left out.
        """
        out = []
        for inst in self.by_role(role):
            for ly in inst.layers:
                audio = self.layer_audio(ly, sample_rate)[:samples] * np.float32(ly.gain * inst.gain)
                if np.any(audio):
                    out.append((audio, 0.5 * (ly.min + ly.max)))
        return out

    def describe(self) -> str:
        """A table: instrument, role, MIDI note, number of layers."""
        rows = [f"{self.name} ({self.path.name}): {len(self.instruments)} instruments"]
        for i in self.instruments:
            note = "-" if i.gm_note is None else i.gm_note
            rows.append(f"  {i.name[:44]:44s} {i.role:13s} note {note:>3}  layers {len(i.layers)}")
        rows += [f"  skipped: {s}" for s in self.skipped]
        return "\n".join(rows)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _decode(path: Path, sample_rate: int, kit_name: str) -> np.ndarray:
    """Read, mix to mono, resample and trim the leading silence of one sample file."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise UserError(f"cannot read sample {path} of kit {kit_name!r} ({_one_line(err)}): "
                        "replace the file or remove its layer from drumkit.xml") from None
    x = data.mean(axis=1)
    if sr != sample_rate:
        g = gcd(int(sr), sample_rate)
        x = resample_poly(x, sample_rate // g, int(sr) // g).astype(np.float32)
    return np.ascontiguousarray(_trim_lead(x), dtype=np.float32)


def first_within(x: np.ndarray, db: float) -> int:
    """Index of the first value of x within `db` (< 0) of its peak magnitude; 0 if x is empty."""
    mag = np.abs(x)
    return int(np.argmax(mag >= float(mag.max()) * 10 ** (db / 20))) if mag.size else 0


def _trim_lead(x: np.ndarray) -> np.ndarray:
    if not np.any(x):
        return x[:0]
    return x[first_within(x, ONSET_DB):]


# ---------------------------------------------------------------- drumkit.xml parsing

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for el in root.iter():
        el.tag = _local(el.tag) if isinstance(el.tag, str) else el.tag
    return root


def _text(el: ET.Element, tag: str, default: str = "") -> str:
    t = el.findtext(tag)
    return t.strip() if t is not None and t.strip() else default


def _float(el: ET.Element, tag: str, default: float) -> float:
    try:
        return float(_text(el, tag, str(default)))
    except ValueError:
        return default


def _int_or_none(el: ET.Element, tag: str) -> int | None:
    try:
        return int(_text(el, tag)) if _text(el, tag) else None
    except ValueError:
        return None


def _read_root(folder: Path) -> ET.Element:
    if not folder.is_dir():
        raise UserError(f"drum kit folder {folder} not found: "
                        "pass the folder that holds drumkit.xml")
    xml = folder / "drumkit.xml"
    if not xml.is_file():
        raise UserError(f"{folder} has no drumkit.xml: pass a Hydrogen kit folder "
                        "(unpack a .h2drumkit file with tar first)")
    try:
        root = _strip_namespaces(ET.parse(xml).getroot())
    except ET.ParseError as err:
        raise UserError(f"{xml} is not valid XML ({_one_line(err)}): "
                        "re-save the kit from Hydrogen or restore the file") from None
    if root.tag != "drumkit_info":
        raise UserError(f"{xml} is not a Hydrogen drum kit (root <{root.tag}>, "
                        "expected <drumkit_info>): pass a Hydrogen kit folder")
    return root


def _component_volumes(root: ET.Element) -> dict[str, float]:
    return {_text(c, "id"): _float(c, "volume", 1.0) for c in root.iter("drumkitComponent")}


def _layer_groups(inst: ET.Element,
                  volumes: dict[str, float]) -> list[tuple[float, list[ET.Element]]]:
    """(gain, layer elements) per component; the instrument itself counts as one component."""
    groups = [(_float(c, "gain", 1.0) * volumes.get(_text(c, "component_id"), 1.0),
               c.findall("layer")) for c in inst.findall("instrumentComponent")]
    groups.append((1.0, inst.findall("layer")))
    if _text(inst, "filename"):  # the oldest format: one sample over the whole velocity range
        layer = ET.Element("layer")
        ET.SubElement(layer, "filename").text = _text(inst, "filename")
        groups.append((1.0, [layer]))
    return [g for g in groups if g[1]]


def _check_readable(path: Path, kit_name: str) -> None:
    try:
        sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise UserError(f"cannot read sample {path} of kit {kit_name!r} ({_one_line(err)}): "
                        "replace the file or remove its layer from drumkit.xml") from None


def _parse_layers(folder: Path, group: list[ET.Element], comp_gain: float, kit_name: str,
                  skipped: list[str], inst_name: str) -> list[Layer]:
    layers = []
    for el in group:
        fn = _text(el, "filename")
        path = (folder / fn) if fn else None
        if path is None or not path.is_file():
            skipped.append(f"{inst_name!r}: sample {fn or '(none)'} not in the kit folder")
            continue
        _check_readable(path, kit_name)
        layers.append(Layer(min=_float(el, "min", 0.0), max=_float(el, "max", 1.0),
                            gain=_float(el, "gain", 1.0) * comp_gain, path=path))
    return layers


def _parse_instrument(folder: Path, el: ET.Element, volumes: dict[str, float], kit_name: str,
                      skipped: list[str]) -> Instrument | None:
    name = _text(el, "name", f"instrument {_text(el, 'id', '?')}")
    layers: list[Layer] = []
    for comp_gain, group in _layer_groups(el, volumes):
        layers = _parse_layers(folder, group, comp_gain, kit_name, skipped, name)
        if layers:
            break
    if not layers:
        return None
    note = _int_or_none(el, "midiOutNote")
    role = infer_role(name, note, tuple(ly.path.name for ly in layers))
    mg = _int_or_none(el, "muteGroup")
    return Instrument(name=name, role=role, gm_note=note,
                      gain=_float(el, "volume", 1.0) * _float(el, "gain", 1.0),
                      mute_group=-1 if mg is None else mg, layers=tuple(layers))


def load_kit(path: str | Path) -> Kit:
    """Load the Hydrogen kit in folder `path` (UserError with a one-line fix on bad input)."""
    folder = Path(path).expanduser()
    root = _read_root(folder)
    name = _text(root, "name", folder.name)
    volumes = _component_volumes(root)
    skipped: list[str] = []
    instruments = []
    for el in root.iter("instrument"):
        inst = _parse_instrument(folder, el, volumes, name, skipped)
        if inst is not None:
            instruments.append(inst)
    if not instruments:
        raise UserError(f"drum kit {folder} has no instrument with a sample file in its folder: "
                        "check the file names in drumkit.xml")
    return Kit(name=name, path=folder, license=_text(root, "license") or _text(root, "licence"),
               instruments=tuple(instruments), skipped=tuple(skipped))


def main(argv: list[str] | None = None) -> int:
    """Print the role table of each kit folder given on the command line."""
    try:
        for p in argv if argv is not None else sys.argv[1:]:
            print(load_kit(p).describe())
    except UserError as err:
        print(f"rtdrums: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
