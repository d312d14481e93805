"""Live settings: TOML file, flags over it, and one-line errors for bad values."""

from __future__ import annotations

import argparse

import pytest

from rtdrums.commands import live
from rtdrums.errors import UserError
from rtdrums.host.config import LiveConfig, parse_route, resolve


def _args(*argv):
    p = argparse.ArgumentParser()
    live.add_arguments(p)
    return p.parse_args(list(argv))


def test_defaults():
    cfg = resolve(_args())
    assert cfg == LiveConfig()
    assert cfg.block == 128 and cfg.sample_rate == 48000 and cfg.midi and cfg.record is None
    assert cfg.with_default_route(2) == {"kick": [1], "snare": [2]}
    assert cfg.with_default_route(8) == {"kick": [1], "snare": [2], "hihat": [3], "residual": [4]}


def test_toml_then_flags(tmp_path):
    f = tmp_path / "stage.toml"
    f.write_text('''
preset = "mykit"
block = 64
host_api = "jack"
backend = "jack"
[input]
device = "Scarlett"
channels = [1, 2]
[output]
kick = [3]
dry = [5, 6]
[midi]
backend = "jack"
port = ""
[record]
folder = "/tmp/takes"
format = "flac"
''')
    cfg = resolve(_args("--config", str(f)))
    assert (cfg.preset, cfg.block, cfg.host_api, cfg.input_device) == ("mykit", 64, "jack", "Scarlett")
    assert cfg.input_channels == [1, 2] and cfg.route == {"kick": [3], "dry": [5, 6]}
    assert cfg.midi_port is None and cfg.record == "/tmp/takes" and cfg.record_format == "flac"
    assert cfg.backend == "jack" and LiveConfig().backend == "auto"
    cfg = resolve(_args("--config", str(f), "--block", "128", "--input-channels", "3",
                        "--route", "snare=1", "--no-midi", "--no-record", "--backend", "auto"))
    assert cfg.block == 128 and cfg.input_channels == [3] and cfg.route == {"snare": [1]}
    assert cfg.backend == "auto"
    assert cfg.midi is False and cfg.record is None and cfg.preset == "mykit"


def test_route_syntax():
    assert parse_route(["kick=1,snare=2", "dry=5+6", "kick=7"]) == \
        {"kick": [1, 7], "snare": [2], "dry": [5, 6]}
    assert parse_route(["none"]) == {}
    with pytest.raises(UserError, match="SOURCE=CHANNEL"):
        parse_route(["tom=1"])
    with pytest.raises(UserError, match="counted from 1"):
        parse_route(["kick=0"])


@pytest.mark.parametrize("text, match", [
    ("bogus = 1", "unknown key 'bogus'"),
    ("[input]\nchanel = 1", r"unknown key 'chanel' in \[input\]"),
    ("[outputs]\nkick = 1", r"unknown table \[outputs\]"),
    ("block = -3", "block must be a positive whole number"),
    ("[input]\nchannels = [1, 2, 3]", "one channel .* or two"),
    ("[midi]\nbackend = 'coremidi'", "MIDI backend must be"),
    ("backend = 'asio'", "backend must be portaudio, jack or auto"),
    ("[record]\nformat = 'mp3'", "wav or flac"),
    ("block = ", "config file"),
])
def test_bad_file(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        resolve(_args("--config", str(f)))
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        resolve(_args("--config", str(tmp_path / "nope.toml")))
