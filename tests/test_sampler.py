"""The built-in sampler on the fixture kit's real samples: velocity layers, round robin, the
hi-hat choke, the note's sound in its own block at the deciding sample, offline == chunked ==
the live callbacks (Python and compiled), and one-line errors for bad settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.errors import UserError
from rtdrums.events import EVENT_DTYPE
from rtdrums.offline import separate
from rtdrums.preset import load_preset
from rtdrums.sampler.build import build_sampler
from rtdrums.sampler.settings import parse_sampler
from rtdrums.sampler.voices import render_block, reset

SR, BLOCK = 48000, 128
KIT = Path(__file__).parent / "fixtures" / "kit"
KICK, SNARE, CLOSED, PEDAL, OPEN = 36, 38, 42, 44, 46


@pytest.fixture(scope="module")
def preset():
    return load_preset("default")


def _sampler(preset, table, block=BLOCK, base=KIT.parent):
    return build_sampler(parse_sampler(table, base), preset, SR, block)


def _play(a, notes, total, block=BLOCK):
    """Drive the sampler alone, block by block, with note-ons (note, velocity, decided sample);
    returns its per-drum output (total, drums)."""
    out = np.zeros((total, a.smp.shape[1]), np.float32)
    ev = np.zeros(16, EVENT_DTYPE)
    for start in range(0, total, block):
        n = min(block, total - start)
        mine = [x for x in notes if start <= x[2] < start + n]
        for e, (note, vel, at) in enumerate(mine):
            ev[e]["note"], ev[e]["velocity"], ev[e]["decided"], ev[e]["emitted"] = note, vel, at, start + n
        render_block(a, ev, len(mine), n)
        out[start:start + n] = a.smp[:n]
    return out


def _sound(kit, name, layer):
    inst = kit.instrument(name)
    ly = inst.layers[layer]
    return kit.layer_audio(ly, SR) * np.float32(ly.gain * inst.gain)


def test_velocity_picks_the_layer_and_scales_it(preset, fixture_kit):
    a = _sampler(preset, {"kit": "kit"})
    for vel, layer in ((30, 0), (64, 1), (120, 2)):       # Kick layers: [0, 1/3], [1/3, 2/3], [2/3, 1]
        reset(a)
        out = _play(a, [(KICK, vel, 300)], 2000)
        ref = _sound(fixture_kit, "Kick", layer)[:1700] * np.float32(vel / 127)
        assert not out[:300].any()
        np.testing.assert_array_equal(out[300:, 0], ref)
        assert not out[:, 1:].any()                       # the kick plays on the kick's drum only
    # a curve of 2 makes velocity 100 (0.79 -> 0.62) play the middle layer, quieter
    a = _sampler(preset, {"kit": "kit", "curve": 2.0, "level_db": -6.0})
    out = _play(a, [(KICK, 100, 0)], 1000)
    x = (100 / 127) ** 2
    ref = _sound(fixture_kit, "Kick", 1)[:1000] * np.float32(10 ** (-6 / 20) * x)
    np.testing.assert_allclose(out[:, 0], ref, rtol=1e-6, atol=1e-9)


def test_round_robin_plays_a_layers_files_in_turn(preset, tmp_path):
    folder = tmp_path / "snare"
    folder.mkdir()
    for i, name in enumerate(("sd_01.flac", "sd_04.flac", "sd_08.flac")):   # three distinct sounds
        shutil.copy(KIT / name, folder / f"hit_rr{i + 1}.flac")
    a = _sampler(preset, {"snare": {"folder": str(folder)}})
    gap = 30000                                           # longer than every sound
    notes = [(SNARE, 127, k * gap) for k in range(5)]
    out = _play(a, notes, 5 * gap)[:, 1]
    from rtdrums.sampler.sources import folder_layers
    (layer,) = folder_layers(folder, "snare", SR)
    starts = [s[:500] for s in layer.sounds]
    order = [next(i for i, s in enumerate(starts) if np.array_equal(out[k * gap:k * gap + 500], s))
             for k in range(5)]
    assert order == [0, 1, 2, 0, 1]


def test_closed_hat_chokes_the_open_one_with_a_fade(preset, fixture_kit):
    a = _sampler(preset, {"kit": "kit", "choke_ms": 4.0})
    fade = round(0.004 * SR)
    open_at, closed_at = 1000, 3000
    out = _play(a, [(OPEN, 100, open_at), (CLOSED, 40, closed_at)], 12000)[:, 2]
    x_o, x_c = np.float32(100 / 127), np.float32(40 / 127)
    ring = _sound(fixture_kit, "Open HH", 1) * x_o
    closed = _sound(fixture_kit, "Closed HH", 0) * x_c    # velocity 40 = 0.31: the first layer
    assert len(ring) > 12000                              # without the choke it would ring on
    np.testing.assert_array_equal(out[open_at:closed_at], ring[:closed_at - open_at])
    open_part = out[closed_at:] - np.pad(closed, (0, 12000))[:12000 - closed_at]
    # over the fade the open hat falls from its level to zero, then stops: no cut, no click
    k = closed_at - open_at
    ramp = (np.arange(fade, 0, -1) / fade).astype(np.float32)
    np.testing.assert_allclose(open_part[:fade], ring[k:k + fade] * ramp, atol=1e-6)
    assert np.abs(open_part[fade:]).max() < 1e-6
    # a second open hat is not choked by the first
    reset(a)
    out2 = _play(a, [(OPEN, 100, 0), (OPEN, 100, 500)], 3000)[:, 2]
    np.testing.assert_allclose(out2[500:3000], ring[500:3000] + ring[:2500], atol=1e-6)


def test_the_sound_starts_at_the_deciding_sample_of_its_block(preset, fixture_kit):
    a = _sampler(preset, {"kit": "kit"})
    first = _sound(fixture_kit, "Snare Rock", 2)[0] * np.float32(1.0)
    for at in (0, 1, 77, BLOCK - 1, 5 * BLOCK + 3):
        reset(a)
        out = _play(a, [(SNARE, 127, at)], 8 * BLOCK)[:, 1]
        assert np.flatnonzero(out)[0] == at and out[at] == first


def test_voice_limit_fades_the_oldest(preset):
    a = _sampler(preset, {"kit": "kit", "voices": 2})
    _play(a, [(KICK, 100, 0), (KICK, 100, 100), (KICK, 100, 200)], 300)
    sounding = [v for v in range(len(a.v_sound)) if a.v_sound[v] >= 0]
    assert len(sounding) == 3 and sum(a.v_fade[v] >= 0 for v in sounding) == 1
    assert a.v_age[[v for v in sounding if a.v_fade[v] >= 0][0]] == 0


@pytest.fixture(scope="module")
def take(rendered_groove):
    return rendered_groove.mix[:6 * SR].astype(np.float32)


def test_offline_equals_chunked_and_forms_the_outputs(preset, take):
    table = {"kit": "kit", "snare": {"mode": "layer"}}
    runs = []
    for block in (BLOCK, 1000):
        eng = Engine(preset, SR, max_block=block)
        runs.append(separate(eng, take, block, sampler=_sampler(preset, table, block)))
    a, b = runs
    np.testing.assert_array_equal(a.outputs, b.outputs)
    ev = a.events
    assert len(ev) > 20 and ((ev["decided"] < ev["emitted"]) & (ev["emitted"] - ev["decided"] <= BLOCK)).all()
    o = a.outputs
    eng = Engine(preset, SR, max_block=BLOCK)
    from rtdrums.offline import run_blocks
    stems, _ = run_blocks(eng, np.concatenate([take, np.zeros(eng.stem_latency, np.float32)]), BLOCK)
    stems = stems[:len(take)]
    sampler = o[:, 5]
    assert np.abs(sampler).max() > 0.1
    np.testing.assert_array_equal(o[:, 4], take)                       # input
    np.testing.assert_allclose(o[:, 3], stems[:, 3])                   # residual
    # replace: the kick output is its samples only; layer: the snare's stem is kept
    snare_samples = o[:, 1] - stems[:, 1]
    np.testing.assert_allclose(o[:, 0] + snare_samples + o[:, 2], sampler, atol=1e-5)
    np.testing.assert_allclose(o[:, 6], o[:, 0] + o[:, 1] + o[:, 2] + o[:, 3], atol=1e-5)
    assert np.abs(snare_samples).max() > 0.05


def test_python_and_compiled_callbacks_play_what_offline_plays(preset, take, tmp_path):
    from ctypes.util import find_library
    if not find_library("portaudio"):
        pytest.skip("needs libportaudio2 (the compiled callback calls Pa_GetStreamTime)")
    import ctypes

    from rtdrums.host import native
    from rtdrums.host.config import LiveConfig, SOURCES
    from rtdrums.host.session import LiveSession

    table = {"kit": "kit", "hihat": {"mode": "layer"}}
    cfg = LiveConfig(block=BLOCK, midi=False, sampler=parse_sampler(table, KIT.parent),
                     route={"sampler": [1], "mix": [2], "kick": [3], "dry": [4]},
                     route_gain_db={"mix": -6.0})
    n = len(take) // BLOCK * BLOCK
    x = np.ascontiguousarray(take[:n, None])
    outs = {}
    for path in ("callback", "native"):
        s = LiveSession(cfg)
        s.preset = preset
        s.engine = Engine(preset, SR, max_block=BLOCK)
        s.sampler = build_sampler(cfg.sampler, preset, SR, BLOCK)
        s.stem_names, s.drum_names = tuple(s.engine.stem_names), tuple(s.engine.drum_names)
        s.route, s.n_in, s.n_out = cfg.route, 1, 4
        s._alloc()
        out = np.zeros((n, 4), np.float32)
        if path == "callback":
            for p in range(0, n, BLOCK):
                s._process(x[p:p + BLOCK], out[p:p + BLOCK], 0, BLOCK)
        else:
            s.sd = type("sd", (), {"_ffi": None})
            ctl = s.ctl
            ctl[native.N_IN], ctl[native.N_OUT], ctl[native.WAKE_FD] = 1, 4, -1
            arrays = native.CoreArrays(
                ctl, np.array(s.chans, np.int64), s.route_array, s.mono, s.stems, s.events,
                s.peaks, s.hits, s.last_vel, s.last_pos, s.timings, s.waits,
                np.zeros((1, 4), np.int64), np.zeros(4, np.int64),
                *native.dummy_recorder_arrays(4, BLOCK), s.gains, s.outs, s.sampler)
            cb = native.compile_callback(s.engine._bundle, arrays)
            call = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                    ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p)(cb.cfunc.address)
            for p in range(0, n, BLOCK):
                assert call(x[p:].ctypes.data, out[p:].ctypes.data, BLOCK, None, 0, cb.userdata) == 0
        outs[path] = out
    np.testing.assert_array_equal(outs["callback"], outs["native"])
    eng = Engine(preset, SR, max_block=1000)
    off = separate(eng, take[:n], 1000, sampler=build_sampler(cfg.sampler, preset, SR, 1000)).outputs
    col = {s: i for i, s in enumerate(SOURCES)}
    out = outs["native"]
    assert np.abs(out[:, 0]).max() > 0.1
    np.testing.assert_array_equal(out[:, 0], off[:, col["sampler"]])
    np.testing.assert_array_equal(out[:, 1], off[:, col["mix"]] * np.float32(10 ** (-6 / 20)))
    np.testing.assert_array_equal(out[:, 2], off[:, col["kick"]])
    np.testing.assert_array_equal(out[:, 3], take[:n])


@pytest.mark.parametrize("table, match", [
    ({"kit": "nowhere"}, "nowhere"),
    ({"snare": {"folder": "nowhere"}}, "sample folder for snare not found"),
    ({"kit": "kit", "tempo": 3}, r"unknown key 'tempo' in \[sampler\]"),
    ({"kit": "kit", "snare": {"gain": 3}}, r"unknown key 'gain' in \[sampler.snare\]"),
    ({"kit": "kit", "cowbell": {"kit": "kit"}}, r"unknown drum \[sampler.cowbell\]"),
    ({"kit": "kit", "curve": 0}, "velocity curve for kick must be an exponent"),
    ({"kit": "kit", "curve": "log"}, "velocity curve"),
    ({"kit": "kit", "mode": "mute"}, "replace or layer"),
    ({"kit": "kit", "hihat_open": {"mode": "layer"}}, "mode is set per drum"),
    ({"kit": "kit", "voices": 0}, "voices for kick"),
    ({}, "names no samples"),
])
def test_bad_settings_are_one_line_errors(preset, table, match):
    with pytest.raises(UserError, match=match) as e:
        _sampler(preset, table)
    assert "\n" not in str(e.value)


def test_bad_samples_are_one_line_errors(preset, tmp_path, kit_copy):
    folder = tmp_path / "kick"
    folder.mkdir()
    (folder / "broken.wav").write_bytes(b"RIFF not audio")
    with pytest.raises(UserError, match="broken.wav: not a readable audio file"):
        _sampler(preset, {"kick": {"folder": str(folder)}})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no WAV, FLAC"):
        _sampler(preset, {"kick": {"folder": str(tmp_path / "empty")}})
    kit = kit_copy()
    xml = (kit / "drumkit.xml").read_text()
    first, rest = xml.split("<instrument>", 1)[0], xml.split("</instrument>", 1)[1]
    (kit / "drumkit.xml").write_text(first + rest)          # the Kick instrument removed
    with pytest.raises(UserError, match="has no kick instrument .*instrument ="):
        _sampler(preset, {"kit": str(kit)})
    with pytest.raises(UserError, match="has no instrument 'Bass Drum'"):
        _sampler(preset, {"kit": str(kit), "kick": {"kit": str(KIT), "instrument": "Bass Drum"}})
    (kit / "sd_04.flac").unlink()
    with pytest.raises(UserError, match="Snare Rock.*sd_04.flac not in the kit folder"):
        _sampler(preset, {"kit": str(kit), "kick": {"kit": str(KIT)}})


def test_settings_file_routing_table_and_sampler(tmp_path):
    import argparse

    from rtdrums.commands import live
    from rtdrums.host.config import parse_routing, resolve
    f = tmp_path / "stage.toml"
    f.write_text(f'''
[output]
kick = [1]
[route]
sampler = {{ channels = [3, 4], gain_db = -6.0 }}
mix = [2]
input = 5
[sampler]
kit = "{KIT}"
level_db = -3.0
[sampler.snare]
folder = "snare_samples"
mode = "layer"
''')
    p = argparse.ArgumentParser()
    live.add_arguments(p)
    cfg = resolve(p.parse_args(["--config", str(f)]))
    assert cfg.route == {"kick": [1], "sampler": [3, 4], "mix": [2], "dry": [5]}
    assert cfg.route_gain_db == {"sampler": -6.0}
    s = cfg.sampler
    assert s.sources["kick"].kit == KIT and s.sources["kick"].level_db == -3.0
    assert s.sources["snare"].folder == tmp_path / "snare_samples" and s.sources["snare"].kit is None
    assert s.mode("snare") == "layer" and s.mode("kick") == "replace"
    cfg = resolve(p.parse_args(["--config", str(f), "--route", "mix=1+2@-3dB,input=3"]))
    assert cfg.route == {"mix": [1, 2], "dry": [3]} and cfg.route_gain_db == {"mix": -3.0}
    assert parse_routing(["kick=1@0"]) == ({"kick": [1]}, {"kick": 0.0})
    for bad, match in ((["mix=1@loud"], "gain must be a number of dB"),
                       (["cowbell=1"], "SOURCE=CHANNEL")):
        with pytest.raises(UserError, match=match):
            parse_routing(bad)
    f.write_text("[route]\nmix = { channel = 1 }\n")
    with pytest.raises(UserError, match=r"\[route\] mix: expected \{ channels"):
        resolve(p.parse_args(["--config", str(f)]))


def test_separate_writes_the_sampler_and_the_mix(preset, take, tmp_path):
    import soundfile as sf

    from rtdrums.separation_job import run_separation
    wav = tmp_path / "take.wav"
    sf.write(wav, take[:3 * SR], SR, subtype="FLOAT")
    settings = parse_sampler({"kit": "kit"}, KIT.parent)
    res = run_separation(wav, tmp_path / "out", "default", 256, sampler=settings)
    names = {f.name for f in res.files}
    assert {"sampler.wav", "mix.wav", "kick.wav", "triggers.csv"} <= names
    got = sf.read(tmp_path / "out" / "sampler.wav", dtype="float32")[0]
    eng = Engine(preset, SR, max_block=BLOCK)
    ref = separate(eng, take[:3 * SR], BLOCK, sampler=build_sampler(settings, preset, SR, BLOCK)).outputs
    np.testing.assert_array_equal(got, ref[:, 5])
    np.testing.assert_array_equal(sf.read(tmp_path / "out" / "mix.wav", dtype="float32")[0], ref[:, 6])


def test_bench_keeps_every_voice_sounding(preset):
    from rtdrums.sampler.bench import TEST_KIT, bench_voices
    rows = bench_voices(preset, TEST_KIT, voices=(0, 4), repeats=2)      # raises if a voice ends
    assert [r["voices"] for r in rows] == [0, 4] and rows[1]["per_voice_us"] is not None


def test_separate_config_needs_a_sampler_or_effects_table(tmp_path):
    import argparse

    from rtdrums.commands import separate as cmd
    f = tmp_path / "stage.toml"
    f.write_text("block = 64\n")
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    with pytest.raises(UserError, match=r"has no \[sampler\] or \[effects\] table"):
        cmd.run(p.parse_args([str(tmp_path / "x.wav"), "--out", str(tmp_path / "o"), "--config", str(f)]))
    f.write_text("[sampler]\nkit = 'kit'\nwobble = 1\n")
    with pytest.raises(UserError, match=r"unknown key 'wobble' in \[sampler\]"):
        cmd.run(p.parse_args([str(tmp_path / "x.wav"), "--out", str(tmp_path / "o"), "--config", str(f)]))
