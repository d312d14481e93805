"""The note sender (both paths) and the MIDI backend errors."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from rtdrums.errors import UserError
from rtdrums.events import EVENT_DTYPE
from rtdrums.host import midi

SR = 48000


def _events(*rows):
    ev = np.zeros(8, EVENT_DTYPE)
    for i, (note, vel) in enumerate(rows):
        ev[i]["note"], ev[i]["velocity"] = note, vel
    return ev, len(rows)


@pytest.mark.parametrize("path", ["callback", "thread"])
def test_note_on_then_off(path):
    sent = []
    s = midi.NoteSender(lambda m: sent.append((tuple(m), time.monotonic())), SR, path)
    s.on_block(*_events((36, 100), (42, 60)), pos=128)
    for pos in range(256, 128 * 30, 128):                  # 50 ms = 2400 samples
        s.on_block(*_events(), pos=pos)
        if path == "thread":
            time.sleep(0.001)
    time.sleep(0.05)
    s.close()
    msgs = [m for m, _ in sent]
    assert msgs[:2] == [(0x99, 36, 100), (0x99, 42, 60)]
    assert sorted(msgs[2:]) == [(0x89, 36, 0), (0x89, 42, 0)]
    assert s.sent == 2 and s.offs == 2 and s.errors == 0


def test_retrigger_closes_the_sounding_note_first():
    sent = []
    s = midi.NoteSender(sent.append, SR, "callback")
    s.on_block(*_events((38, 90)), pos=128)
    s.on_block(*_events((38, 70)), pos=256)
    s.close()
    assert [tuple(m) for m in sent] == [(0x99, 38, 90), (0x89, 38, 0), (0x99, 38, 70), (0x89, 38, 0)]


def test_send_errors_are_counted_not_raised():
    def broken(_):
        raise RuntimeError("port gone")
    s = midi.NoteSender(broken, SR, "callback")
    s.on_block(*_events((36, 100)), pos=128)
    assert s.errors == 1 and s.sent == 0


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_alsa_unavailable_says_what_to_do():
    with pytest.raises(UserError) as e:
        midi.MidiOutput("alsa")
    msg = str(e.value)
    assert "MIDI backend ALSA unavailable" in msg and "--no-midi" in msg and "\n" not in msg


def test_jack_without_server_says_what_to_do(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"no-such-server-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(UserError) as e:
        midi.MidiOutput("jack")
    msg = str(e.value)
    assert "MIDI backend JACK unavailable: no JACK server is running" in msg
    assert "--no-midi" in msg


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_auto_backend_tries_both_and_says_so(monkeypatch):
    from rtdrums.host.config import LiveConfig
    from rtdrums.host.session import LiveSession
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"no-such-server-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    s = LiveSession(LiveConfig())
    s.in_dev = {"hostapi_name": "ALSA"}
    with pytest.raises(UserError) as e:
        s._open_midi()
    msg = str(e.value)
    assert "no MIDI backend available" in msg and "JACK" in msg and "ALSA" in msg
    assert "--no-midi" in msg and "\n" not in msg
