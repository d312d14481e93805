"""Live settings: defaults, then a TOML file, then command-line flags (flags win).

TOML layout (every key optional; see docs/live.md for a full example):

    preset = "default"
    sample_rate = 48000
    block = 128
    duration = 0               # seconds; 0 = until Ctrl-C
    host_api = "jack"          # restrict device matching to one host API
    client_name = "rtdrums"    # JACK client name (MIDI client: <name>-midi)
    backend = "auto"           # jack (one native JACK client, docs/jack-client.md) when the
                               # host API is JACK's, else portaudio; or "portaudio", "jack"
    [input]
    device = "Scarlett"        # index or part of the name; "" = default device
    channels = [1]             # 1-based; two channels = a stereo pair, mixed to mono
    [output]
    device = ""
    kick = [1]                 # output channels for each source; several sources on one
    snare = [2]                # channel are summed
    hihat = [3]
    residual = [4]
    dry = []                   # the (mixed) input itself
    [route]                    # the same, for every output, with a gain (docs/sampler.md)
    sampler = { channels = [3, 4], gain_db = -6.0 }
    mix = [1, 2]
    [sampler]                  # the built-in drum sampler (docs/sampler.md)
    [midi]
    enabled = true
    backend = "auto"           # "jack", "alsa", or auto: JACK when the audio runs on JACK
    port = ""                  # "" = a virtual port; else (part of) an existing port's name
    [record]
    folder = ""                # "" = no recording; else a session folder is made inside
    format = "wav"             # or "flac"
    buffer_s = 10.0
    [[effects.snare]]          # an effect chain per output, in order (docs/effects.md)
    name = "NoiseGate"
    threshold_db = -30
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import UserError
from ..outputs import OUTPUTS
from ..sampler.settings import SamplerSettings, parse_sampler

SOURCES = OUTPUTS
STEM_SOURCES = SOURCES[:4]
ALIASES = {"input": "dry"}


@dataclass
class LiveConfig:
    preset: str = "default"
    adapt: bool | None = None              # template adaptation on/off; None: as the preset says
    sample_rate: int = 48000
    block: int = 128
    duration: float = 0.0
    host_api: str | None = None
    client_name: str = "rtdrums"
    backend: str = "auto"                         # portaudio, jack (host.jackclient), auto
    input_device: str | None = None
    input_channels: list[int] = field(default_factory=lambda: [1])
    output_device: str | None = None
    route: dict[str, list[int]] | None = None      # None = the default routing
    route_gain_db: dict[str, float] = field(default_factory=dict)   # per routed output
    sampler: SamplerSettings | None = None
    midi: bool = True
    midi_backend: str = "auto"
    midi_port: str | None = None
    midi_path: str = "native"                     # native: compiled callback, MIDI thread
    record: str | None = None
    record_format: str = "wav"
    record_buffer_s: float = 10.0
    view: str = "auto"                            # auto, full, plain, off
    effects: dict[str, list[dict]] | None = None  # output -> chain (rtdrums.effects)

    def with_default_route(self, n_out: int) -> dict[str, list[int]]:
        """The routing to use: the configured one, or the stems on the first outputs in order."""
        if self.route is not None:
            return self.route
        return {s: [i + 1] for i, s in enumerate(STEM_SOURCES[:n_out])}


# TOML key -> LiveConfig field, per table ("" = top level)
_TOML = {
    "": {"preset": "preset", "sample_rate": "sample_rate", "block": "block",
         "duration": "duration", "host_api": "host_api", "client_name": "client_name",
         "view": "view", "backend": "backend"},
    "input": {"device": "input_device", "channels": "input_channels"},
    "output": {"device": "output_device"},
    "midi": {"enabled": "midi", "backend": "midi_backend", "port": "midi_port",
             "path": "midi_path"},
    "record": {"folder": "record", "format": "record_format", "buffer_s": "record_buffer_s"},
    "effects": {},                 # chains per output, checked by rtdrums.effects
}


def _channels(value, what: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):
        value = [v for v in value.replace("+", ",").split(",") if v.strip()]
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        raise UserError(f"{what}: expected channel numbers like 1 or 1,2, got {value!r}") from None
    if any(c < 1 for c in out):
        raise UserError(f"{what}: channels are counted from 1, got {value!r}")
    return out


def _source(name, what: str) -> str:
    src = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if src not in SOURCES:
        raise UserError(f"{what}: unknown output {name!r}; outputs are {', '.join(SOURCES)} "
                        f"(input = dry)")
    return src


def _gain_db(value, what: str) -> float:
    try:
        g = float(value)
    except (TypeError, ValueError):
        g = float("nan")
    if isinstance(value, bool) or not -120.0 <= g <= 24.0:
        raise UserError(f"{what}: gain must be a number of dB from -120 to 24, got {value!r}")
    return g


def parse_routing(specs: list[str]) -> tuple[dict[str, list[int]], dict[str, float]]:
    """['kick=1,snare=2', 'dry=5+6', 'sampler=3@-6'] -> the channels of each output and the
    gains in dB given with @; 'none' = no outputs."""
    route: dict[str, list[int]] = {}
    gains: dict[str, float] = {}
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item or item.lower() == "none":
                continue
            src, sep, chans = item.partition("=")
            src = ALIASES.get(src.strip().lower(), src.strip().lower())
            if not sep or src not in SOURCES:
                raise UserError(f"route {item!r}: expected SOURCE=CHANNEL[@GAIN_DB] with SOURCE one "
                                f"of {', '.join(SOURCES)}, input (e.g. kick=1,snare=2,dry=5+6,mix=7@-6)")
            chans, at, gain = chans.partition("@")
            route.setdefault(src, []).extend(_channels(chans, f"route {item!r}"))
            if at:
                gains[src] = _gain_db(gain.lower().removesuffix("db"), f"route {item!r}")
    return route, gains


def parse_route(specs: list[str]) -> dict[str, list[int]]:
    """['kick=1,snare=2', 'dry=5+6'] -> {'kick': [1], 'snare': [2], 'dry': [5, 6]}; 'none' = {}."""
    return parse_routing(specs)[0]


def _route_table(table: dict, where: str) -> tuple[dict[str, list[int]], dict[str, float]]:
    """[route]: OUTPUT = CHANNELS, or OUTPUT = { channels = CHANNELS, gain_db = DB }."""
    route, gains = {}, {}
    for k, v in table.items():
        src = _source(k, f"{where} [route]")
        if isinstance(v, dict):
            extra = set(v) - {"channels", "gain_db"}
            if extra or "channels" not in v:
                raise UserError(f"{where} [route] {k}: expected {{ channels = [1], gain_db = 0.0 }}, "
                                f"got {v!r}")
            if "gain_db" in v:
                gains[src] = _gain_db(v["gain_db"], f"[route] {k}")
            v = v["channels"]
        route[src] = _channels(v, f"[route] {k}")
    return route, gains


def load_toml(path: str | Path) -> dict:
    """Read a settings file into LiveConfig field values; unknown keys are errors."""
    p = Path(path).expanduser()
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"config file not found: {p}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {p}: {e}") from None
    out: dict = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            if key == "route":
                route, gains = _route_table(value, f"config file {p}:")
                out.setdefault("route", {}).update(route)
                out.setdefault("route_gain_db", {}).update(gains)
                continue
            if key == "sampler":
                out["sampler"] = parse_sampler(value, p.parent)
                continue
            if key not in _TOML or key == "":
                raise UserError(f"config file {p}: unknown table [{key}] "
                                f"(known: {', '.join(k for k in _TOML if k)}, route, sampler)")
            if key == "effects":
                from ..effects import parse_effects
                out["effects"] = parse_effects(value, f"config file {p} [effects]")
                continue
            for k, v in value.items():
                if key == "output" and k in STEM_SOURCES + ("dry",):
                    out.setdefault("route", {})[k] = _channels(v, f"[output] {k}")
                elif k in _TOML[key]:
                    out[_TOML[key][k]] = v
                else:
                    known = list(_TOML[key]) + (list(STEM_SOURCES + ("dry",)) if key == "output" else [])
                    raise UserError(f"config file {p}: unknown key {k!r} in [{key}] "
                                    f"(known: {', '.join(known)})")
        elif key in _TOML[""]:
            out[_TOML[""][key]] = value
        else:
            raise UserError(f"config file {p}: unknown key {key!r} (known: "
                            f"{', '.join(_TOML[''])}, and tables {', '.join(k for k in _TOML if k)})")
    if "input_channels" in out:
        out["input_channels"] = _channels(out["input_channels"], "[input] channels")
    for k in ("input_device", "output_device", "midi_port", "record", "host_api"):
        if out.get(k) == "":
            out[k] = None
    return out


def resolve(args) -> LiveConfig:
    """Defaults < TOML file (args.config) < flags that were given (not None)."""
    values: dict = {}
    if getattr(args, "config", None):
        values.update(load_toml(args.config))
    flag_map = {"preset": "preset", "rate": "sample_rate", "block": "block",
                "duration": "duration", "host_api": "host_api", "client_name": "client_name",
                "backend": "backend", "input_device": "input_device", "output_device": "output_device",
                "midi_backend": "midi_backend", "midi_port": "midi_port",
                "midi_path": "midi_path", "record": "record", "record_format": "record_format",
                "view": "view"}
    for flag, name in flag_map.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[name] = v
    if getattr(args, "input_channels", None):
        values["input_channels"] = _channels(args.input_channels, "--input-channels")
    if getattr(args, "route", None):
        values["route"], values["route_gain_db"] = parse_routing(args.route)
    if getattr(args, "no_midi", False):
        values["midi"] = False
    if getattr(args, "no_record", False):
        values["record"] = None
    known = {f.name for f in fields(LiveConfig)}
    cfg = LiveConfig(**{k: v for k, v in values.items() if k in known})
    if cfg.effects and cfg.midi_path == "native":
        cfg.midi_path = "thread"      # effect chains need the Python callback (docs/effects.md)
    _check(cfg)
    return cfg


def _check(cfg: LiveConfig) -> None:
    if len(cfg.input_channels) not in (1, 2):
        raise UserError(f"input channels: give one channel (a mic) or two (a stereo pair), "
                        f"got {cfg.input_channels}")
    for name in ("sample_rate", "block"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise UserError(f"{name.replace('_', ' ')} must be a positive whole number, got {v!r}")
    if not isinstance(cfg.duration, (int, float)) or cfg.duration < 0:
        raise UserError(f"duration must be >= 0 seconds, got {cfg.duration!r}")
    if cfg.midi_backend not in ("auto", "jack", "alsa"):
        raise UserError(f"MIDI backend must be auto, jack or alsa, got {cfg.midi_backend!r}")
    if cfg.backend not in ("portaudio", "jack", "auto"):
        raise UserError(f"backend must be portaudio, jack or auto, got {cfg.backend!r}")
    if cfg.midi_path not in ("native", "callback", "thread"):
        raise UserError(f"MIDI path must be native, callback or thread, got {cfg.midi_path!r}")
    if cfg.record_format not in ("wav", "flac"):
        raise UserError(f"recording format must be wav or flac, got {cfg.record_format!r}")
    if cfg.view not in ("auto", "full", "plain", "off"):
        raise UserError(f"view must be auto, full, plain or off, got {cfg.view!r}")
    if not isinstance(cfg.midi, bool):
        raise UserError(f"[midi] enabled must be true or false, got {cfg.midi!r}")
