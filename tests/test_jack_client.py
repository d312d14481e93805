"""The native JACK backend (`rtdrums live --backend jack`, host.jackclient) on a real JACK server
(dummy backend): one client, compiled process callback, MIDI written in the audio cycle.

The server runs 1024-frame periods (jackrig.PERIOD) and the host 128-sample blocks, so each cycle
is eight engine blocks and the MIDI offsets inside the cycle are exercised. Every assertion
compares with the offline engine (or `rtdrums separate`) on the input the host recorded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from jackrig import PERIOD, SR, LiveProcess, find_take, wait_ports

pytestmark = pytest.mark.jack

HOST = "rtdrums-jk"
ROUTE = ["kick", "snare", "hihat", "residual", "dry"]        # to host outputs 1..5
TAKES = 5
LIVE = [sys.executable, "-m", "rtdrums.cli", "live"]


@pytest.fixture(scope="module")
def groove(fixture_kit, validation_grooves):
    from rtdrums.training.render import render_groove
    hiphop = next(p for p in validation_grooves if "hiphop" in p.name)
    return render_groove(hiphop, fixture_kit, sample_rate=SR, max_seconds=6.0)


def _take(harness, stim):
    """(captured, note-ons) of the first take without a JACK xrun (a dropped cycle shifts the
    loopback legitimately)."""
    for _ in range(TAKES):
        captured = harness.play(stim, extra_s=0.3)
        if harness.xruns == 0:
            return captured, harness.notes()
    pytest.fail(f"{TAKES} takes in a row were disturbed by JACK xruns")


def test_native_jack_client_separates_sends_midi_in_the_cycle_and_records(
        jack_server, harness, groove, tmp_path, capsys):
    rec_parent, stats_file = tmp_path / "rec", tmp_path / "stats.json"
    live = LiveProcess(["--backend", "jack", "--host-api", "jack", "--client-name", HOST,
                        "--preset", "default", "--rate", str(SR), "--block", "128",
                        "--route", ",".join(f"{s}={i + 1}" for i, s in enumerate(ROUTE)),
                        "--record", str(rec_parent), "--view", "plain",
                        "--stats-json", str(stats_file)], env=jack_server.env)
    from rtdrums.host.harness import Harness
    rx = Harness("rx", n_out=0, n_in=0)          # a MIDI receiver downstream only, as a sampler
    try:
        # one client: audio in, audio out per routed channel, MIDI out; no PortAudio, no rtmidi
        ports = wait_ports(harness.client, f"{HOST}:.*", 1 + len(ROUTE) + 1)
        assert sorted(ports) == sorted([f"{HOST}:in_0", f"{HOST}:midi_out"]
                                       + [f"{HOST}:out_{k}" for k in range(len(ROUTE))])
        assert not harness.client.get_ports(f"{HOST}-midi:.*")
        # connected like PortAudio's client: capture_1 -> in_0, out_k -> playback_(k+1)
        conn = lambda p: sorted(q.name for q in harness.client.get_all_connections(p))  # noqa: E731
        assert conn(f"{HOST}:in_0") == ["system:capture_1"]
        assert conn(f"{HOST}:out_0") == ["system:playback_1"]
        assert conn(f"{HOST}:out_4") == ["system:playback_5"]
        harness.wire(HOST, n_in=1, out_channels=list(range(len(ROUTE))), midi_port=f"{HOST}:midi_out")
        harness.connect(f"{HOST}:midi_out", rx.midi_in.name)
        stim = groove.mix
        captured, notes = _take(harness, stim)
        rx_notes = harness.notes(rx.midi)
    finally:
        rc = live.stop(signal.SIGINT)
        rx.close()
    out = live.output
    assert rc == 0, out
    assert "rtdrums live: stopped (Ctrl-C)" in out and f"MIDI: {HOST}:midi_out (JACK" in out, out
    # every note-on got its note-off, the last ones sent on stop
    msgs = [d for ft, d in list(harness.midi) if ft >= harness.start_frame and len(d) == 3]
    ons = sorted(d[1] for d in msgs if d[0] == 0x99 and d[2] > 0)
    offs = sorted(d[1] for d in msgs if d[0] == 0x89)
    assert ons and ons == offs
    stats = json.loads(stats_file.read_text())
    assert stats["backend"] == "jack" and stats["midi_path"] == "jack"
    assert stats["callback_errors"] == 0 and stats["callback"]["budget_ms"] == round(1e3 * PERIOD / SR, 4)

    # -- the recording is complete, and equals the offline engine on the recorded input --------
    folder = next(rec_parent.iterdir())
    meta = json.loads((folder / "session.json").read_text())
    assert meta["status"] == "complete" and meta["dropped_blocks"] == 0 and not meta["gaps"], meta
    x, sr = sf.read(folder / "input.wav", dtype="float32")
    assert sr == SR and len(x) == meta["frames"] == stats["frames"]
    rec_stems = np.stack([sf.read(folder / f"{s}.wav", dtype="float32")[0] for s in ROUTE[:4]], 1)
    from rtdrums.engine import Engine
    from rtdrums.offline import run_blocks
    from rtdrums.preset import load_preset
    eng = Engine(load_preset("default"), sample_rate=SR, max_block=1000)
    off_stems, off_events = run_blocks(eng, x, block=1000)          # another block size on purpose
    np.testing.assert_array_equal(rec_stems, off_stems)

    # -- the routed outputs equal `rtdrums separate` on the same input, sample for sample -------
    from rtdrums.cli import main
    capsys.readouterr()
    assert main(["separate", str(folder / "input.wav"), "--out", str(tmp_path / "sep"),
                 "--preset", "default", "--block", "128", "--quiet"]) == 0
    sep = np.stack([sf.read(tmp_path / "sep" / f"{s}.wav", dtype="float32")[0] for s in ROUTE[:4]], 1)
    L = eng.stem_latency                       # separate removes it: sep[t] = live stem[t + L]
    p0 = find_take(x, stim)[-1]                # where the take sits in the host's input
    q = find_take(captured[:, 4], stim)        # the dry output: the loopback delay
    assert len(q) == 1, "dry input did not come back unchanged"
    q = q[0]
    k = np.arange(max(0, L - p0), len(stim) - q)   # samples of the take with a separated twin
    assert len(k) > 4 * SR
    np.testing.assert_array_equal(captured[q + k, :4], sep[p0 + k - L])
    np.testing.assert_array_equal(captured[q:q + len(stim) - q, :4], off_stems[p0:p0 + len(stim) - q])

    # -- MIDI: the engine's events, each at the frame of its deciding sample (same cycle) -------
    ev = off_events[(off_events["emitted"] > p0) & (off_events["emitted"] <= p0 + len(stim) - q)]
    assert len(ev) > 10
    assert [(nt, v) for _, nt, v in notes] == [(int(e["note"]), int(e["velocity"])) for e in ev]
    # arrival (position in the played take) = deciding sample's place in the take + the loop
    # delay the dry audio had: the note-on left in the cycle, at the frame, that decided it
    assert [t for t, _, _ in notes] == [int(e["decided"]) - p0 + q for e in ev]
    # downstream of the host (not feeding it) the note arrives in the cycle that decided it, at
    # the deciding sample itself: no thread, no extra period
    assert [(t, nt, v) for t, nt, v in rx_notes] == \
        [(int(e["decided"]) - p0, int(e["note"]), int(e["velocity"])) for e in ev]
    assert stats["midi_sent"] >= len(ev) and stats["midi_errors"] == 0


def _live_error(env, *args) -> str:
    r = subprocess.run(LIVE + list(args), capture_output=True, text=True, env=env, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("rtdrums live: error: "), r.stderr
    return lines[0]


def test_native_jack_client_refuses_with_one_line(jack_server, harness):
    env = jack_server.env
    base = ["--backend", "jack", "--preset", "default", "--view", "off", "--duration", "1"]
    taken = harness.client.name                        # a client of that name is running
    assert "already running" in _live_error(env, *base, "--client-name", taken)
    err = _live_error(env, *base, "--block", "2048")
    assert f"JACK period of {PERIOD} frames" in err and "--block 1024" in err
    auto = ["--backend", "auto", *base[2:], "--block", "2048"]     # auto: JACK's, with host API jack
    assert "JACK period" in _live_error(env, *auto, "--host-api", "jack")
    assert "JACK period" not in _live_error(env, *auto, "--host-api", "jack", "--midi-backend", "alsa")
    assert "runs at 48000 Hz" in _live_error(env, *base, "--rate", "44100")
    err = _live_error(env, *base, "--midi-port", "no-such-port")
    assert "no JACK MIDI port matches 'no-such-port'" in err and harness.midi_in.name in err
    assert "--midi-backend jack" in _live_error(env, *base, "--midi-backend", "alsa")
    assert "input channel 3 is out of range" in _live_error(env, *base, "--input-channels", "3")
    no_server = {**env, "JACK_DEFAULT_SERVER": "rtdrums-no-such-server"}
    assert "no JACK server is running" in _live_error(no_server, *base)


def test_bench_control_clients_sit_in_the_graph_and_do_nothing(jack_server, harness):
    """The bench's control path (host.control): the PortAudio host's clients, doing nothing."""
    name = "rtdrums-control"
    ctl = LiveProcess(["--client-name", name, "--block", "128", "--outputs", "4"],
                      env=jack_server.env, cmd=[sys.executable, "-m", "rtdrums.host.control"])
    try:
        ports = wait_ports(harness.client, f"{name}.*:.*", 1 + 4 + 1)
        assert sorted(ports) == sorted([f"{name}:in_0", f"{name}-midi:out"]
                                       + [f"{name}:out_{k}" for k in range(4)])
        harness.wire(name, n_in=1, out_channels=[0, 1, 2, 3], midi_port=f"{name}-midi:out")
        conn = lambda p: [q.name for q in harness.client.get_all_connections(p)]  # noqa: E731
        assert conn(f"{name}:in_0") == [harness.outs[0].name]      # wired to the player only
        assert [conn(f"{name}:out_{k}") for k in range(4)] == [[p.name] for p in harness.ins[:4]]
        assert conn(f"{name}-midi:out") == [harness.midi_in.name]
        stim = np.sin(np.arange(SR // 2) * 0.05).astype(np.float32)
        captured = harness.play(stim, extra_s=0.2)
        notes = harness.notes()
    finally:
        rc = ctl.stop(signal.SIGINT)
    assert rc == 0, ctl.output
    assert not captured[:, :4].any() and notes == []
