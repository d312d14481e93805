"""`rtdrums devices` and the one-line errors of `rtdrums live`, on a real JACK server."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from jackrig import DEVICES, SR
from rtdrums.host.harness import LIVE



def _run(cmd, env, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.jack
def test_devices_lists_jack_audio_and_midi(jack_server):
    r = _run(DEVICES, jack_server.env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "system" in out and "JACK Audio Connection Kit" in out and "2 in   8 out" in out
    assert f"{SR} Hz" in out
    assert "JACK:" in out and "ALSA:" in out
    if not os.path.exists("/dev/snd/seq"):
        assert "ALSA: unavailable: ALSA sequencer unavailable" in out


def test_devices_without_jack_server_still_lists(monkeypatch):
    env = {**os.environ, "JACK_DEFAULT_SERVER": f"none-{os.getpid()}", "JACK_NO_START_SERVER": "1"}
    r = _run(DEVICES, env)
    assert r.returncode == 0, r.stderr
    assert "JACK: unavailable: no JACK server is running" in r.stdout


# (arguments, the PortAudio path's error, the native JACK client's where it differs)
ERRORS = [
    (["--input-device", "nosuch"], "no input device matches 'nosuch'; input devices: [0] system",
     "no JACK client matches input device 'nosuch'; clients with input ports: system"),
    (["--input-channels", "3"], "input channel 3 is out of range: system has input channels 1..2", None),
    (["--input-channels", "1,2,3"], "give one channel (a mic) or two (a stereo pair)", None),
    (["--route", "kick=9"], "output channel 9 is out of range: system has output channels 1..8", None),
    (["--route", "mix=9@-6"], "output channel 9 is out of range: system has output channels 1..8", None),
    (["--route", "sampler=1"], "the route plays the sampler, but the settings have no [sampler] table", None),
    (["--rate", "44100"], "sample rate 44100 Hz does not work",
     "the JACK server runs at 48000 Hz, not 44100: use --rate 48000"),
    (["--block", "100"], "block size 100 is not supported; use one of 32, 64, 128", None),
    (["--host-api", "asio"], "no host API matches 'asio'; available:", None),
    (["--preset", "/no/such/preset"], "preset", None),
]


@pytest.mark.jack
@pytest.mark.parametrize("backend", ["portaudio", "auto"])
@pytest.mark.parametrize("args, expect, jack_expect", ERRORS, ids=[" ".join(e[0]) for e in ERRORS])
def test_live_errors_are_one_line(jack_server, args, expect, jack_expect, backend):
    """Both backends (auto = the native JACK client here) refuse bad settings in one line."""
    base = [] if args[0] == "--host-api" else ["--host-api", "jack"]
    r = _run(LIVE + base + ["--no-midi", "--backend", backend, *args], jack_server.env)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("rtdrums live:")]
    assert len(lines) == 1 and lines[0].startswith("rtdrums live: error: "), r.stderr
    assert (jack_expect if backend == "auto" and jack_expect else expect) in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.jack
def test_rate_error_lists_what_works(jack_server):
    r = _run(LIVE + ["--host-api", "jack", "--backend", "portaudio", "--no-midi", "--rate", "44100"],
             jack_server.env)
    assert "supported: 48000" in r.stderr


@pytest.mark.jack
@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_midi_backend_unavailable(jack_server, live_preset):
    r = _run(LIVE + ["--host-api", "jack", "--preset", str(live_preset), "--midi-backend",
                     "alsa", "--duration", "1"], jack_server.env)
    assert r.returncode == 1
    assert "MIDI backend ALSA unavailable" in r.stderr and "--no-midi" in r.stderr
    r = _run(LIVE + ["--host-api", "jack", "--preset", str(live_preset), "--no-midi",
                     "--duration", "1", "--view", "off"], jack_server.env)
    assert r.returncode == 0, r.stderr
    assert "rtdrums live: stopped (duration reached)" in r.stdout and "MIDI: off" in r.stdout


def test_no_portaudio_names_the_package(monkeypatch):
    from rtdrums.errors import UserError
    from rtdrums.host import audio
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(audio, "find_library", lambda name: None)
    with pytest.raises(UserError, match="libportaudio2"):
        audio.load_sounddevice()


@pytest.mark.jack
@pytest.mark.skipif(not shutil.which("script"), reason="needs script(1) for a pseudo-terminal")
def test_full_view_on_a_terminal(jack_server, live_preset, tmp_path):
    cmd = " ".join(shlex.quote(c) for c in LIVE + [
        "--host-api", "jack", "--preset", str(live_preset), "--no-midi", "--duration", "1.5",
        "--route", "kick=1,snare=2,hihat=3,residual=4,dry=5", "--record", str(tmp_path)])
    r = _run(["script", "-qec", cmd, "/dev/null"], jack_server.env)
    assert r.returncode == 0, r.stdout
    out = r.stdout
    assert "\x1b[" in out                                  # the panel redraws in place
    for src, ch in (("kick", 1), ("snare", 2), ("hihat", 3), ("residual", 4), ("dry", 5)):
        assert re.search(rf"{src}\s+out {ch}\s+\|[#.]+\|", out), src
    assert "CPU" in out and "xruns in" in out and "dropped blocks 0" in out and "latency" in out
    assert "rtdrums live: stopped (duration reached)" in out
