"""End to end on a real JACK server (dummy backend): `rtdrums live` (default preset) with effect
chains on the kick and snare outputs, fed a rendered real-kit groove by an independent JACK
client. What comes back on the routed ports equals the offline chains run on the offline engine's
stems of the input the host recorded; the recording keeps the engine's own stems."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import soundfile as sf

from jackrig import SR, LiveProcess, find_take, play_undisturbed, wait_ports

pytestmark = pytest.mark.jack

HOST = "rtdrums-fx"
SEGMENT = 2 * SR
TAKES = 8
FX = """
[[effects.kick]]
name = "LowShelfFilter"
cutoff_frequency_hz = 100
gain_db = 6
[[effects.snare]]
name = "NoiseGate"
threshold_db = -32
release_ms = 40
[[effects.snare]]
name = "Compressor"
threshold_db = -20
ratio = 4
"""


def test_live_effect_chains_on_jack(jack_server, harness, fixture_kit,
                                    validation_grooves, tmp_path):
    from rtdrums.effects import OUTPUTS, EffectChains, parse_effects
    from rtdrums.engine import Engine
    from rtdrums.offline import run_blocks
    from rtdrums.preset import load_preset
    from rtdrums.training.render import render_groove

    groove = render_groove(validation_grooves[0], fixture_kit, sample_rate=SR, max_seconds=5.0)
    rec_parent = tmp_path / "rec"
    cfg = tmp_path / "stage.toml"
    cfg.write_text(f'preset = "default"\nhost_api = "jack"\nclient_name = "{HOST}"\n'
                   f'[output]\nkick = [1]\nsnare = [2]\ndry = [3]\n[midi]\nenabled = false\n'
                   f'[record]\nfolder = "{rec_parent}"\n' + FX)
    stats_json = tmp_path / "stats.json"
    live = LiveProcess(["--config", str(cfg), "--view", "plain", "--stats-json", str(stats_json)],
                       env=jack_server.env)
    try:
        wait_ports(harness.client, f"{HOST}:out_.*", 3)
        harness.wire(HOST, n_in=1, out_channels=[0, 1, 2], midi_port=None)
        takes = []               # short takes: on a busy machine a long one without xruns is rare
        for a in range(0, len(groove.mix), SEGMENT):
            stim = groove.mix[a:a + SEGMENT]
            takes.append((stim, play_undisturbed(harness, stim, TAKES)))
    finally:
        rc = live.stop(signal.SIGINT)
    out = live.output
    assert rc == 0, out
    assert "effects (measured at start, per block): kick: LowShelfFilter" in out, out
    stats = json.loads(stats_json.read_text())
    assert stats["midi_path"] is None and stats["callback_errors"] == 0
    assert stats["effects"]["snare"]["chain"] == "NoiseGate > Compressor"
    assert 0 < stats["effects"]["snare"]["cost_us"] < 1e6 * 128 / SR

    folder = next(rec_parent.iterdir())
    x = sf.read(folder / "input.wav", dtype="float32")[0]
    rec_snare = sf.read(folder / "snare.wav", dtype="float32")[0]
    eng = Engine(load_preset("default"), sample_rate=SR, max_block=128)
    stems, _ = run_blocks(eng, x, block=128)
    np.testing.assert_array_equal(rec_snare, stems[:, 1])          # the recorder: no effects
    chains = EffectChains(parse_effects(_fx_table()), SR, 128)
    outs = np.zeros((len(x), len(OUTPUTS)), np.float32)
    outs[:, :4], outs[:, 4], outs[:, 6] = stems, x, stems.sum(axis=1)
    fx_stems = chains.run(outs)

    for stim, captured in takes:
        p0 = find_take(x, stim)[-1]                     # the accepted take: the last one
        q = find_take(captured[:, 2], stim)             # dry output: the loopback delay
        assert len(q) == 1, "dry input did not come back unchanged"
        n = len(stim) - q[0]
        for col in (0, 1):
            got = captured[q[0]:q[0] + n, col]
            np.testing.assert_allclose(got, fx_stems[p0:p0 + n, col], rtol=0, atol=1e-6)
            assert not np.allclose(got, stems[p0:p0 + n, col], atol=1e-3)   # the chain is heard


def _fx_table() -> dict:
    import tomllib
    return tomllib.loads(FX)["effects"]
