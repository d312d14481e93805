"""End to end: `rtdrums live` on a real JACK server (dummy backend), fed a rendered real-kit
groove by an independent JACK client, MIDI received by that client and by jack_midi_dump.

One live process serves the whole test; a take is retaken only when JACK reported an xrun
during it (a dropped cycle may legitimately shift the loopback). Every assertion compares with
the offline engine on the input the host recorded, so nothing is tuned to pass.
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import soundfile as sf

from jackrig import SR, LiveProcess, MidiDump, find_take, wait_ports
from rtdrums.evaluation.metrics import onset_scores

pytestmark = pytest.mark.jack

GROOVE_S = 12.0
# Onset F-measure (50 ms) of the notes received live, per drum: the target. The engine with
# the fixture-kit preset (learned trigger) reaches, on the first 12 s of the hip-hop validation
# groove played live in three segments: kick 1.00, snare 1.00, hi-hat 0.93-0.95 (31 hits; the offline
# engine on the same input gives the same, since the live notes are asserted identical to its
# events above). Most of the hi-hat's misses and extra notes are at the cuts between segments,
# where the sound stops dead.
F_FLOOR = {"kick": 0.9, "snare": 0.9, "hihat": 0.9}
HOST = "rtdrums-e2e"
ROUTE = ["kick", "snare", "hihat", "residual", "dry"]        # to host outputs 1..5
TAKES = 5
SEGMENTS = 3


@pytest.fixture(scope="module")
def groove(fixture_kit, validation_grooves):
    from rtdrums.training.render import render_groove
    hiphop = next(p for p in validation_grooves if "hiphop" in p.name)
    return render_groove(hiphop, fixture_kit, sample_rate=SR, max_seconds=GROOVE_S)


def _offline(preset_dir, x: np.ndarray):
    from rtdrums.engine import Engine
    from rtdrums.offline import run_blocks
    from rtdrums.preset import load_preset
    eng = Engine(load_preset(preset_dir), sample_rate=SR, max_block=1000)
    return eng, *run_blocks(eng, x, block=1000)      # other block size on purpose


def _segments(groove, n: int) -> list[tuple[int, int]]:
    """Cut the groove into n parts, each cut 50 ms before an onset (no hit is split)."""
    on = np.sort(groove.samples())
    cuts = [0]
    for k in range(1, n):
        i = np.searchsorted(on, k * len(groove.mix) // n)
        cuts.append(int(on[min(i, len(on) - 1)]) - SR // 20)
    return list(zip(cuts, cuts[1:] + [len(groove.mix)]))


def _take(harness, stim, heard=None):
    """Play until a take has no JACK xrun; returns (captured, note-ons relative to the take).

    heard, if given, collects the notes of every take, retaken ones too (a second MIDI client
    connected for the whole run receives them all), as (retaken, notes)."""
    for _ in range(TAKES):
        captured = harness.play(stim, extra_s=0.3)
        notes = harness.notes()
        if heard is not None:
            heard.append((harness.xruns > 0, notes))
        if harness.xruns == 0:
            return captured, notes
    pytest.fail(f"{TAKES} takes in a row were disturbed by JACK xruns")


def test_live_on_jack(jack_server, harness, live_preset, groove, tmp_path):
    """The default backend on JACK (auto: the native JACK client)."""
    rec_parent = tmp_path / "rec"
    live = LiveProcess(["--host-api", "jack", "--client-name", HOST, "--preset", str(live_preset),
                        "--rate", str(SR), "--block", "128",
                        "--route", ",".join(f"{s}={i + 1}" for i, s in enumerate(ROUTE)),
                        "--midi-backend", "jack", "--record", str(rec_parent), "--view", "plain"],
                       env=jack_server.env)
    dump = MidiDump()
    takes = []                        # (segment start in the groove, stim, captured, notes)
    heard = []                        # (retaken, notes) of every take the harness played
    try:
        wait_ports(harness.client, f"{HOST}:out_.*", len(ROUTE))
        midi_port = wait_ports(harness.client, f"{HOST}:midi_out", 1)[0]     # the native client's
        harness.wire(HOST, n_in=1, out_channels=list(range(len(ROUTE))), midi_port=midi_port)
        harness.connect(midi_port, dump.port(harness.client))
        # short takes: on a busy machine a 12 s take without any xrun is rare
        for a, b in _segments(groove, SEGMENTS):
            stim = groove.mix[a:b]
            takes.append((a, stim, *_take(harness, stim, heard)))
    finally:
        rc = live.stop(signal.SIGINT)
        dumped = dump.stop()
    out = live.output
    assert rc == 0, out
    assert "rtdrums live: stopped (Ctrl-C)" in out, out

    # -- the recording is complete and valid after SIGINT --------------------------------------
    folder = next(rec_parent.iterdir())
    meta = json.loads((folder / "session.json").read_text())
    assert meta["status"] == "complete" and meta["dropped_blocks"] == 0 and not meta["gaps"], meta
    x, sr = sf.read(folder / "input.wav", dtype="float32")
    assert sr == SR and len(x) == meta["frames"] == meta["stats"]["frames"]
    rec_stems = np.stack([sf.read(folder / f"{s}.wav", dtype="float32")[0]
                          for s in ROUTE[:4]], axis=1)
    assert rec_stems.shape == (len(x), 4)

    # -- recorded stems and triggers equal the offline engine on the recorded input ------------
    eng, off_stems, off_events = _offline(live_preset, x)
    assert meta["stem_latency_samples"] == eng.stem_latency
    np.testing.assert_array_equal(rec_stems, off_stems)
    from rtdrums.events import read_csv
    rows = read_csv(folder / "triggers.csv")
    assert [(r["note"], r["velocity"], round(r["onset_s"] * SR)) for r in rows] == \
           [(int(e["note"]), int(e["velocity"]), int(e["onset"])) for e in off_events]

    received = []                     # (time in the groove in samples, note, velocity)
    for a, stim, captured, notes in takes:
        # the host received exactly what the harness played (float path, no conversion);
        # the accepted take is the last time this segment appears in the input
        p0 = find_take(x, stim)[-1]
        # captured outputs equal the offline stems, shifted by the fixed I/O delay
        q = find_take(captured[:, 4], stim)              # dry output: the loopback delay
        assert len(q) == 1, "dry input did not come back unchanged"
        n = len(stim) - q[0]
        np.testing.assert_array_equal(captured[q[0]:q[0] + n, :4], off_stems[p0:p0 + n])
        # the notes received are the engine's events of this take, in order
        ev = off_events[(off_events["emitted"] > p0) & (off_events["emitted"] <= p0 + len(stim) + SR // 4)]
        assert [(nt, v) for _, nt, v in notes] == [(int(e["note"]), int(e["velocity"])) for e in ev]
        received += [(a + t, nt, v) for t, nt, v in notes]
    # the second, independent client got the same notes; in a take with an xrun a client that
    # missed the cycle misses its MIDI, so there the harness's notes need only be among the dump's
    clean = [(nt, v) for retaken, notes in heard for _, nt, v in notes if not retaken]
    if any(retaken for retaken, _ in heard):
        rest = iter(dumped)
        assert all(note in rest for note in clean), (clean, dumped)
    else:
        assert dumped == clean

    # -- against the groove's ground truth ----------------------------------------------------
    from rtdrums.preset import load_preset
    preset = load_preset(live_preset)
    drum_of = {nt: d.name for d in preset.drums for nt in d.notes}
    problems = []
    for drum in ("kick", "snare", "hihat"):
        ref = groove.times(drum)
        mine = [(t / SR, nt, v) for t, nt, v in received if drum_of.get(nt) == drum]
        got = np.array([t for t, _, _ in mine])
        assert {nt for _, nt, _ in mine} <= set(next(d.notes for d in preset.drums if d.name == drum))
        f = onset_scores(ref, got, 0.05)["f"]
        if f < F_FLOOR[drum]:
            problems.append(f"{drum}: F = {f:.3f} < {F_FLOOR[drum]} ({len(got)} notes for "
                            f"{len(ref)} onsets)")
        # hit-to-note latency: from the hit leaving the player to the note-on arriving at it
        lat = [g - r for r in ref for g in got if 0 <= g - r < 0.05]
        assert lat and max(lat) < 0.05
        print(f"{drum}: F {f:.3f}, hit-to-note median {1e3 * np.median(lat):.1f} ms, "
              f"max {1e3 * max(lat):.1f} ms")
        # velocities rise with the rendered velocities (rank correlation over matched hits)
        vel_ref = groove.velocities(drum)
        pairs = []
        for t, v in zip(ref, vel_ref):
            near = [(abs(g - t), gv) for g, _, gv in mine if abs(g - t) < 0.05]
            if near:
                pairs.append((v, min(near)[1]))
        if len({v for v, _ in pairs}) > 2:
            from scipy.stats import spearmanr
            rho = spearmanr(*zip(*pairs))[0]
            print(f"{drum}: velocity rank correlation {rho:.2f} over {len(pairs)} hits")
            if not rho > 0.5:
                problems.append(f"{drum}: velocity rank correlation {rho:.2f} over {len(pairs)} hits")
    assert not problems, "; ".join(problems)


def test_block_64_config_file_named_port_sigterm(jack_server, harness, live_preset, groove,
                                                tmp_path):
    """The PortAudio backend (chosen in the file), block 64, a stereo pair (both channels fed the
    same), settings from a TOML file with a flag overriding it, MIDI to an existing port by name,
    stopped by SIGTERM: outputs, notes and recording still equal the offline engine."""
    rec_parent = tmp_path / "rec"
    cfg = tmp_path / "stage.toml"
    cfg.write_text(f'''
preset = "{live_preset}"
block = 128
host_api = "jack"
backend = "portaudio"
client_name = "{HOST}"
[input]
channels = [1, 2]
[output]
kick = [1]
dry = [2]
[midi]
backend = "jack"
port = "{harness.midi_in.name}"
[record]
folder = "{rec_parent}"
''')
    live = LiveProcess(["--config", str(cfg), "--block", "64", "--view", "off"],
                       env=jack_server.env)
    try:
        wait_ports(harness.client, f"{HOST}:out_.*", 2)
        harness.wire(HOST, n_in=2, out_channels=[0, 1], midi_port=None)   # rtdrums connects MIDI
        stim = groove.mix[:4 * SR]
        captured, notes = _take(harness, np.stack([stim, stim], axis=1))
    finally:
        rc = live.stop(signal.SIGTERM)
    out = live.output
    assert rc == 0 and "rtdrums live: stopped (SIGTERM)" in out, out
    assert "block 64" in out and f"MIDI: {harness.midi_in.name} (JACK)" in out
    folder = next(rec_parent.iterdir())
    meta = json.loads((folder / "session.json").read_text())
    assert meta["status"] == "complete" and meta["block"] == 64 and meta["dropped_blocks"] == 0
    assert meta["input_channels"] == [1, 2] and meta["route"] == {"kick": [1], "dry": [2]}
    x = sf.read(folder / "input.wav", dtype="float32")[0]
    kick = sf.read(folder / "kick.wav", dtype="float32")[0]
    p0 = find_take(x, stim)[-1]                  # (a + a) * 0.5 == a exactly in float32
    _, off_stems, off_events = _offline(live_preset, x)
    np.testing.assert_array_equal(kick, off_stems[:, 0])
    q = find_take(captured[:, 1], stim)[0]
    n = len(stim) - q
    np.testing.assert_array_equal(captured[q:q + n, 0], off_stems[p0:p0 + n, 0])
    ev = off_events[(off_events["emitted"] > p0) & (off_events["emitted"] <= p0 + len(stim) + SR // 4)]
    assert len(ev) > 5
    assert [(nt, v) for _, nt, v in notes] == [(int(e["note"]), int(e["velocity"])) for e in ev]
