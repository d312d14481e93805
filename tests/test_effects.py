"""Effect chains per output (rtdrums.effects): streaming state, offline == live, bad input, and a
noise gate against hi-hat bleed in the snare stem of a rendered groove."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rtdrums import cli
from rtdrums.effects import BUILTIN, NOT_STREAMING, EffectChains, OUTPUTS, parse_effects
from rtdrums.errors import UserError

SR = 48000
# settings away from the defaults, so that every plugin does audible work
SETTINGS = {
    "Bitcrush": {"bit_depth": 6}, "Chorus": {"rate_hz": 2.0, "depth": 0.5, "mix": 0.6},
    "Clipping": {"threshold_db": -12}, "Compressor": {"threshold_db": -30, "ratio": 6},
    "Delay": {"delay_seconds": 0.013, "feedback": 0.4, "mix": 0.5},
    "Distortion": {"drive_db": 18}, "Gain": {"gain_db": -6},
    "HighShelfFilter": {"cutoff_frequency_hz": 5000, "gain_db": 6},
    "HighpassFilter": {"cutoff_frequency_hz": 120}, "Invert": {},
    "LadderFilter": {"mode": "BPF24", "cutoff_hz": 900, "resonance": 0.5},
    "Limiter": {"threshold_db": -20, "release_ms": 50},
    "LowShelfFilter": {"cutoff_frequency_hz": 150, "gain_db": -6},
    "LowpassFilter": {"cutoff_frequency_hz": 3000}, "NoiseGate": {"threshold_db": -30},
    "PeakFilter": {"cutoff_frequency_hz": 400, "gain_db": -8, "q": 2},
    "Phaser": {"rate_hz": 3.0, "depth": 0.7, "mix": 0.5},
    "Reverb": {"room_size": 0.6, "wet_level": 0.4},
}


def _outputs(stems: np.ndarray, dry: np.ndarray) -> np.ndarray:
    """Outputs as live forms them without a sampler: the stems, the input, silence, the mix."""
    outs = np.zeros((len(dry), len(OUTPUTS)), np.float32)
    outs[:, :4], outs[:, 4] = stems, dry
    outs[:, 6] = stems.sum(axis=1)
    return outs


def test_every_offered_plugin_has_settings_here():
    assert set(SETTINGS) == set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_whole_equals_chunked(name, rendered_groove):
    """One call over the whole snare track == blocks of 128 == blocks of 100 == again after reset."""
    import pedalboard
    x = np.ascontiguousarray(rendered_groove.stems["snare"][:5 * SR], np.float32)
    spec = {"snare": [{"name": name, **SETTINGS[name]}]}
    chains = EffectChains(parse_effects(spec), SR, 128)
    whole = chains.boards["snare"].process(x, SR, reset=True)
    chains.reset()
    assert not np.allclose(whole, x, atol=1e-4) or name == "NoiseGate", "the plugin did nothing"
    stems = np.zeros((len(x), 4), np.float32)
    stems[:, 1] = x
    for block in (128, 100):
        c = EffectChains(chains.spec, SR, block)
        first = c.run(_outputs(stems, x))[:, 1]
        # float32 tolerance (-100 dBFS): JUCE's IIR filters flush near-zero state to zero at the
        # end of every block, so their last bits follow the block length (docs/effects.md)
        np.testing.assert_allclose(first, whole, rtol=0, atol=1e-5)
        c.reset()
        np.testing.assert_array_equal(c.run(_outputs(stems, x))[:, 1], first)     # reset is complete
        print(f"{name} block {block}: max |chunked - whole| = {np.max(np.abs(first - whole)):.1e}")
    assert isinstance(chains.boards["snare"], pedalboard.Pedalboard)


def test_a_chain_in_order_whole_equals_chunked(rendered_groove):
    x = np.ascontiguousarray(rendered_groove.mix[:3 * SR], np.float32)
    spec = parse_effects({"dry": [{"name": "HighpassFilter", "cutoff_frequency_hz": 80},
                                  {"name": "Compressor", "threshold_db": -24, "ratio": 4},
                                  {"name": "Reverb", "room_size": 0.3}]})
    chains = EffectChains(spec, SR, 64)
    whole = chains.boards["dry"].process(x, SR, reset=True)
    chains.reset()
    stems = np.zeros((len(x), 4), np.float32)
    out = chains.run(_outputs(stems, x))
    np.testing.assert_allclose(out[:, 4], whole, rtol=0, atol=1e-5)
    assert not out[:, :4].any() and not out[:, 5:].any()     # outputs without a chain pass through


def test_the_mix_is_formed_again_after_the_drums_chains(rendered_groove):
    """A chain on the kick changes the mix by what it changed in the kick; the mix's own chain
    then runs on that."""
    r = rendered_groove
    stems = np.stack([r.stems[d][:2 * SR] for d in ("kick", "snare", "hihat")] +
                     [np.zeros(2 * SR, np.float32)], axis=1).astype(np.float32)
    spec = parse_effects({"kick": [{"name": "Gain", "gain_db": -12}], "mix": [{"name": "Gain", "gain_db": 6}]})
    out = EffectChains(spec, SR, 128).run(_outputs(stems, stems.sum(axis=1)))
    g = np.float32(10 ** (-12 / 20)), np.float32(10 ** (6 / 20))
    np.testing.assert_allclose(out[:, 0], stems[:, 0] * g[0], atol=1e-6)
    np.testing.assert_allclose(out[:, 6], (stems[:, 0] * g[0] + stems[:, 1:].sum(axis=1)) * g[1], atol=1e-5)


def test_live_python_path_equals_offline_separate(rendered_groove, tmp_path):
    """The live callback's outputs (LiveSession._process, no device) == `rtdrums separate
    --config` on the same input, as live plays them; the recorder keeps the dry stems."""
    from rtdrums.effects_bench import deviceless_session

    x = rendered_groove.mix[:6 * SR].astype(np.float32)
    (tmp_path / "fx.toml").write_text(FX_TOML)
    spec = parse_effects(_toml(FX_TOML)["effects"])
    s = deviceless_session(spec, "default", SR, 128)   # measured the chains' cost, then reset them
    lat = s.stem_latency
    assert set(s.effect_costs) == {"snare", "kick", "dry"}
    n = len(x) + lat
    xin = np.zeros((n + 128, 1), np.float32)
    xin[:len(x), 0] = x
    live = np.zeros((n + 128, len(OUTPUTS)), np.float32)
    raw = np.zeros((n + 128, 4), np.float32)
    for i in range(0, n, 128):
        s._process(xin[i:i + 128], live[i:i + 128], 0, 128)
        raw[i:i + 128] = s.stems

    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    assert cli.main(["separate", str(tmp_path / "in.wav"), "--out", str(tmp_path / "out"),
                     "--config", str(tmp_path / "fx.toml"), "--quiet"]) == 0
    for j, name in enumerate(OUTPUTS[:5]):
        if name in spec:
            off = sf.read(tmp_path / "out" / f"{name}-fx.wav", dtype="float32")[0]
            np.testing.assert_allclose(live[:len(x), j], off, atol=1e-6)
            before = x if name == "dry" else np.concatenate(       # the stem as live plays it
                [np.zeros(lat, np.float32), sf.read(tmp_path / "out" / f"{name}.wav", dtype="float32")[0]])
            assert not np.allclose(off, before[:len(x)], atol=1e-3)       # the chain changed it
        else:
            assert not (tmp_path / "out" / f"{name}-fx.wav").exists()
            np.testing.assert_allclose(live[lat:lat + len(x), j], sf.read(tmp_path / "out" / f"{name}.wav",
                                                                      dtype="float32")[0], atol=1e-6)
    np.testing.assert_array_equal(raw[lat:lat + len(x), 1],
                                  sf.read(tmp_path / "out" / "snare.wav", dtype="float32")[0])


FX_TOML = """
[[effects.snare]]
name = "NoiseGate"
threshold_db = -40
release_ms = 60
[[effects.snare]]
name = "Compressor"
threshold_db = -20
ratio = 4
[[effects.kick]]
name = "LowShelfFilter"
cutoff_frequency_hz = 100
gain_db = 4
[[effects.dry]]
name = "Reverb"
room_size = 0.4
"""


def _toml(text: str) -> dict:
    import tomllib
    return tomllib.loads(text)


# -- a noise gate against hi-hat bleed in the snare stem --------------------------------------

GATE = {"name": "NoiseGate", "threshold_db": -15, "ratio": 10, "attack_ms": 0.5, "release_ms": 30}
WINDOW = int(0.03 * SR)


def _energy(y: np.ndarray, onsets) -> float:
    return float(sum(np.sum(y[o:o + WINDOW].astype(np.float64) ** 2) for o in onsets))


@pytest.mark.parametrize("style", ["rock", "hiphop"])
def test_noise_gate_lowers_hihat_bleed_in_the_snare_stem(style, fixture_kit, validation_grooves):
    """A validation groove rendered with the fixture kit, separated with the default preset (not
    trained on this kit). Bleed: the snare stem's energy in the 30 ms after each hi-hat onset
    where the true snare track is silent. The gate must cut it by at least 10 dB and keep the
    energy at the snare's own onsets within 0.5 dB (numbers in docs/effects.md)."""
    from rtdrums.engine import Engine
    from rtdrums.offline import separate
    from rtdrums.preset import load_preset
    from rtdrums.training.render import render_groove

    g = render_groove(next(p for p in validation_grooves if style in p.name), fixture_kit,
                      sample_rate=SR, max_seconds=20.0)
    chains = EffectChains(parse_effects({"snare": [GATE]}), SR, 128)
    sep = separate(Engine(load_preset("default"), SR, max_block=128), g.mix, 128, effects=chains)
    snare, gated, true = sep.stems[:, 1], sep.outputs[:, 1], g.stems["snare"]
    hh = [o for o in g.samples("hihat") if np.max(np.abs(true[o:o + WINDOW])) < 1e-4]
    sn = g.samples("snare")
    assert len(hh) >= 20 and len(sn) >= 20
    bleed_db = 10 * np.log10(_energy(gated, hh) / _energy(snare, hh))
    kept_db = 10 * np.log10(_energy(gated, sn) / _energy(snare, sn))
    level_db = 10 * np.log10(_energy(snare, hh) / len(hh) / WINDOW)
    print(f"{style}: bleed in the snare stem at {len(hh)} hi-hat onsets with the snare silent "
          f"(mean level {level_db:.1f} dBFS) {bleed_db:+.1f} dB; energy at the {len(sn)} snare "
          f"onsets {kept_db:+.2f} dB")
    assert bleed_db < -10
    assert kept_db > -0.5


# -- bad input: one line each, before any audio --------------------------------------------------

@pytest.mark.parametrize("table, message", [
    ({"snare": [{"name": "Gate"}]}, "unknown effect 'Gate'; use one of Bitcrush, Chorus"),
    ({"snare": [{"name": "NoiseGate", "threshold": -30}]},
     "NoiseGate has no parameter 'threshold' (its parameters: attack_ms, ratio, release_ms, "
     "threshold_db)"),
    ({"snare": [{"name": "Compressor", "ratio": 0.5}]}, "bad value for Compressor: Compressor "
     "ratio must be a value >= 1.0."),
    ({"snare": [{"name": "NoiseGate", "threshold_db": "-30"}]}, "NoiseGate threshold_db: "
     "expected a finite number, got '-30'"),
    ({"snare": [{"name": "Gain", "gain_db": float("nan")}]}, "expected a finite number, got nan"),
    ({"snare": [{"name": "LadderFilter", "mode": "LPF6"}]}, "LadderFilter mode must be one of LPF12"),
    ({"snare": [{"name": "PitchShift"}]}, "PitchShift buffers audio"),
    ({"snare": [{"threshold_db": -3}]}, "give the effect's name"),
    ({"toms": [{"name": "Gain"}]}, "unknown output 'toms' (outputs: kick, snare, hihat, residual, dry, sampler, mix)"),
    ({"snare": [{"vst3": "/nonexistent/Plug.vst3"}]}, "VST3 plugin not found: /nonexistent/Plug.vst3"),
])
def test_bad_effect_settings(table, message):
    with pytest.raises(UserError) as e:
        parse_effects(table)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", sorted(NOT_STREAMING))
def test_plugins_that_change_the_block_length_are_refused(name):
    with pytest.raises(UserError, match="cannot run on a live output"):
        parse_effects({"kick": [{"name": name}]})


def test_a_file_that_is_not_a_vst3_plugin(tmp_path):
    fake = tmp_path / "Fake.vst3"
    fake.write_bytes(b"not a plugin")
    with pytest.raises(UserError) as e:
        parse_effects({"kick": [{"vst3": str(fake)}]})
    assert f"cannot load the VST3 plugin {fake}" in str(e.value) and "\n" not in str(e.value)


def test_a_frequency_above_nyquist_is_refused_at_the_rate():
    spec = parse_effects({"hihat": [{"name": "LowpassFilter", "cutoff_frequency_hz": 30000}]})
    EffectChains(spec, 96000, 128)
    with pytest.raises(UserError, match="cutoff_frequency_hz = 30000 must lie between 0 and 24000"):
        EffectChains(spec, 48000, 128)


def test_too_slow_chains_are_refused_with_the_numbers():
    chains = EffectChains(parse_effects({"snare": [{"name": "Reverb"}]}), SR, 128)
    costs = chains.costs(blocks=50)
    assert costs["snare"] > 0
    chains.check_budget(costs, fraction=1.0)
    with pytest.raises(UserError) as e:
        chains.check_budget({"snare": 2000.0})
    assert str(e.value).startswith("the effect chains take 2000 us per block of 128 (snare 2000 us) "
                                   "but may take at most 1333 us")


def test_settings_file_and_command_line(tmp_path, capsys):
    from rtdrums.host.config import load_toml
    f = tmp_path / "stage.toml"
    f.write_text('block = 64\n' + FX_TOML)
    values = load_toml(f)
    assert values["block"] == 64 and [e["name"] for e in values["effects"]["snare"]] == \
        ["NoiseGate", "Compressor"]
    f.write_text('[[effects.snare]]\nname = "Gate"\n')
    assert cli.main(["live", "--config", str(f)]) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown effect 'Gate'" in err and "\n" not in err
    assert cli.main(["separate", str(tmp_path / "none.wav"), "--out", str(tmp_path / "o"),
                     "--config", str(tmp_path / "stage.toml")]) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown effect 'Gate'" in err and "\n" not in err


def test_effects_switch_live_to_the_python_callback(tmp_path):
    from argparse import Namespace
    from rtdrums.host.config import resolve
    f = tmp_path / "stage.toml"
    f.write_text(FX_TOML)
    assert resolve(Namespace(config=str(f))).midi_path == "thread"
    f.write_text("block = 64\n")
    assert resolve(Namespace(config=str(f))).midi_path == "native"


def test_the_live_view_meters_each_output_after_its_chain(rendered_groove):
    """A Gain of -20 dB on the snare: its meter reads 20 dB below the engine's snare stem, the
    others read their stems; the panel marks the snare 'fx'."""
    import io

    from rtdrums.effects_bench import deviceless_session
    from rtdrums.host.view import LiveView

    x = rendered_groove.mix[:2 * SR].astype(np.float32)
    s = deviceless_session(parse_effects({"snare": [{"name": "Gain", "gain_db": -20}]}),
                           "default", SR, 128)
    out = np.zeros((128, 5), np.float32)
    stem_peaks = np.zeros(4)
    for i in range(0, len(x) - 127, 128):
        s._process(x[i:i + 128, None], out, 0, 128)
        stem_peaks = np.maximum(stem_peaks, np.abs(s.stems).max(axis=0))
    np.testing.assert_allclose(s.peaks[1], 0.1 * stem_peaks[1], rtol=1e-3)
    np.testing.assert_array_equal(s.peaks[[0, 2, 3]], stem_peaks[[0, 2, 3]].astype(np.float32))
    panel = io.StringIO()
    LiveView(s, panel, "full")._draw([float(p) for p in s.peaks])
    lines = panel.getvalue().splitlines()
    assert any(" snare " in ln and " fx |" in ln for ln in lines), lines
    assert not any(" kick " in ln and " fx |" in ln for ln in lines), lines
