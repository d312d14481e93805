"""End to end on a real JACK server (dummy backend): `rtdrums live` with the sampler playing the
fixture kit, routed with a gain. The sampler's port carries exactly what the offline path plays on
the input the host recorded, each note's sound starting at the sample that decided it, in the
same callback; the mix port carries the mix at its gain."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import soundfile as sf

from jackrig import SR, LiveProcess, find_take, play_undisturbed, wait_ports

pytestmark = pytest.mark.jack

HOST = "rtdrums-sampler"
KIT = __import__("pathlib").Path(__file__).parent / "fixtures" / "kit"
TAKES = 5


@pytest.fixture(scope="module")
def groove(fixture_kit, validation_grooves):
    from rtdrums.training.render import render_groove
    hiphop = next(p for p in validation_grooves if "hiphop" in p.name)
    return render_groove(hiphop, fixture_kit, sample_rate=SR, max_seconds=5.0)


def note_to_sound(sampler: np.ndarray, events, quiet: int = 64) -> list[int]:
    """For each sampled note that starts in silence (nothing sounding `quiet` samples before its
    deciding sample), where its sound begins minus its deciding sample."""
    out = []
    for e in events:
        d = int(e["decided"])
        if d >= quiet and not sampler[d - quiet:d - 1].any() and sampler[d:d + quiet].any():
            out.append(int(np.flatnonzero(sampler[d - quiet:])[0]) - quiet)
    return out


def test_sampler_sound_in_the_block_of_its_note(jack_server, harness, groove, tmp_path):
    from rtdrums.engine import Engine
    from rtdrums.offline import separate
    from rtdrums.preset import load_preset
    from rtdrums.sampler.build import build_sampler
    from rtdrums.sampler.settings import parse_sampler

    rec_parent = tmp_path / "rec"
    cfg = tmp_path / "stage.toml"
    table = f'kit = "{KIT}"\nchoke_ms = 6.0\n[sampler.snare]\nmode = "layer"\n'
    cfg.write_text(f'''
[route]
sampler = 1
dry = 2
mix = {{ channels = [3], gain_db = -6.0 }}
[sampler]
{table}''')
    live = LiveProcess(["--config", str(cfg), "--host-api", "jack", "--client-name", HOST,
                        "--preset", "default", "--rate", str(SR), "--block", "128",
                        "--no-midi", "--record", str(rec_parent), "--view", "off"], env=jack_server.env)
    try:
        wait_ports(harness.client, f"{HOST}:out_.*", 3)
        harness.wire(HOST, n_in=1, out_channels=[0, 1, 2], midi_port=None)
        stim = groove.mix
        captured = play_undisturbed(harness, stim, TAKES)
    finally:
        rc = live.stop(signal.SIGINT)
    assert rc == 0, live.output

    folder = next(rec_parent.iterdir())
    x, _ = sf.read(folder / "input.wav", dtype="float32")
    preset = load_preset("default")
    settings = parse_sampler(__import__("tomllib").loads("[sampler]\n" + table)["sampler"], tmp_path)
    eng = Engine(preset, SR, max_block=1000)
    off = separate(eng, x, 1000, sampler=build_sampler(settings, preset, SR, 1000))
    sampler, mix = off.outputs[:, 5], off.outputs[:, 6]

    p0 = find_take(x, stim)[-1]                      # the accepted take in the host's input
    q = find_take(captured[:, 1], stim)              # the loopback delay of the dry output
    assert len(q) == 1
    n = len(stim) - q[0]
    got = captured[q[0]:q[0] + n, 0]
    np.testing.assert_array_equal(got, sampler[p0:p0 + n])
    np.testing.assert_array_equal(captured[q[0]:q[0] + n, 2], mix[p0:p0 + n] * np.float32(10 ** (-6 / 20)))
    mine = off.events[(off.events["decided"] >= p0) & (off.events["decided"] < p0 + n)]
    assert len(mine) > 10 and np.abs(got).max() > 0.1
    # measured on the captured port: each note's sound begins at its deciding sample, which lies
    # in the block (callback) that emits the note-on
    aligned = np.zeros(len(x), np.float32)
    aligned[p0:p0 + n] = got
    offsets = note_to_sound(aligned, mine)
    # the live run's note-ons (its recorded triggers) left at the end of the 128-sample block
    # holding each note's deciding sample: the sound began in that same callback
    from rtdrums.events import read_csv
    emitted = np.array([round(r["emitted_s"] * SR) for r in read_csv(folder / "triggers.csv")])
    assert len(emitted) == len(off.events)
    lead = emitted - off.events["decided"]
    assert ((lead >= 1) & (lead <= 128)).all()
    print(f"note-to-sound on JACK: {len(offsets)} notes starting in silence, offsets "
          f"{sorted(set(offsets))} samples; the live note-on left {np.median(lead):.0f} samples "
          f"(median, max {lead.max()}) after its sound began")
    assert len(offsets) >= 3 and set(offsets) == {0}
