"""Renders as recordings in simulated rooms (rtdrums.training.rooms), and training / eval with them, on the
fixture kit and shipped grooves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from rtdrums import cli
from rtdrums.training import rooms
from rtdrums.training.render import STEMS, render_groove, shipped_grooves

KIT = Path(__file__).parent / "fixtures" / "kit"
RTDRUMS = Path(sys.executable).parent / "rtdrums"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
SR = 48000


@pytest.fixture(scope="module")
def short_render(fixture_kit, validation_grooves):
    return render_groove(validation_grooves[0], fixture_kit, SR, max_seconds=6.0)


def _sum(r):
    return r.stems["kick"] + r.stems["snare"] + r.stems["hihat"] + r.stems["residual"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_stems_sum_to_the_mix_and_onsets_stay(short_render, seed):
    v = rooms.vary(short_render, seed)
    assert np.array_equal(v.mix, _sum(v))                         # exactly as render.Render defines it
    assert all(v.stems[s].dtype == np.float32 and len(v.stems[s]) == len(v.mix) for s in STEMS)
    assert len(v.mix) >= len(short_render.mix) and np.all(np.isfinite(v.mix))
    assert v.onsets == short_render.onsets and v.sample_rate == SR
    assert not np.allclose(v.mix[:len(short_render.mix)], short_render.mix, atol=1e-3)


def test_same_seed_same_audio_other_seed_other_audio(short_render):
    a, b, c = rooms.vary(short_render, 5), rooms.vary(short_render, 5), rooms.vary(short_render, 6)
    for s in STEMS:
        assert np.array_equal(a.stems[s], b.stems[s])
    assert len(a.mix) != len(c.mix) or not np.allclose(a.mix, c.mix)


def test_drawn_parameters_stay_within_the_documented_ranges():
    names = {f.name for f in fields(rooms.Variation)} - {"kit_x_m", "kit_y_m"}
    assert names == set(rooms.RANGES)
    for seed in range(300):
        v = rooms.draw(seed)
        for k, (lo, hi) in rooms.RANGES.items():
            assert lo <= getattr(v, k) <= hi, (seed, k)
        assert v.room_width_m <= v.room_length_m
        assert 1.0 <= v.kit_x_m <= v.room_length_m - 1.0 and 1.0 <= v.kit_y_m <= v.room_width_m - 1.0
    for k in rooms.RANGES:                                        # the table in the docstring
        assert f"| {k} " in rooms.__doc__


@pytest.mark.parametrize("seed", [0, 2, 7])
def test_the_mix_peaks_at_the_drawn_level_after_soft_clipping(short_render, seed):
    v = rooms.draw(seed)
    out = rooms.vary(short_render, seed)
    target = 10 ** ((rooms.LEVEL_REF_DB + v.level_db) / 20)
    expected = v.clip_ceiling * np.tanh(target / v.clip_ceiling)
    peak = np.max(np.abs(out.mix))
    assert peak <= v.clip_ceiling + 1e-6
    assert abs(20 * np.log10(peak / expected)) < 1.0             # background noise may add a little


def test_loud_takes_clip_and_the_distortion_is_in_the_residual(short_render):
    seed = next(s for s in range(1000) if rooms.draw(s).level_db > 17 and rooms.draw(s).clip_ceiling < 0.7)
    v = rooms.draw(seed)
    out = rooms.vary(short_render, seed)
    assert np.max(np.abs(out.mix)) <= v.clip_ceiling + 1e-6
    assert np.array_equal(out.mix, _sum(out))
    # the drums' stems alone would exceed the ceiling: the residual holds what clipping took away
    drums = out.stems["kick"] + out.stems["snare"] + out.stems["hihat"]
    assert np.max(np.abs(drums)) > v.clip_ceiling


def test_compressor_gain_reduces_only_above_threshold():
    x = np.concatenate([np.full(4800, 0.05), np.full(4800, 1.0), np.full(48000, 0.05)])
    g = rooms.compressor_gain(x, SR, threshold_db=-12.0, ratio=4.0, attack_ms=1.0, release_ms=50.0)
    assert g.shape == x.shape and np.all(g <= 1.0) and np.all(g > 0)
    assert np.all(g[:4800] == 1.0)                                # quiet: untouched
    steady = (10 ** (-12 / 20) / 1.0) ** (1 - 1 / 4)              # (threshold / level) ** (1 - 1/ratio)
    assert g[9000] == pytest.approx(steady, rel=1e-3)
    assert g[-1] == 1.0                                           # released after the loud part
    assert np.all(rooms.compressor_gain(x, SR, -12.0, 1.0, 1.0, 50.0) == 1.0)   # ratio 1: none


def test_a_hit_starts_at_its_onset_in_every_room(fixture_kit, groove_file):
    """Each stem's response starts at its drum's direct sound: nothing (-120 dB) before the onset,
    sound right from it (the fixture hi-hat takes 3 ms to its attack), whatever the room."""
    r = render_groove(groove_file([(0.5, 36, 100), (1.0, 38, 100), (1.5, 42, 100)]), fixture_kit, SR)
    for seed in range(6):
        v = rooms.vary(r, seed)
        for o in v.onsets:
            at = round(o.time_s * SR)
            x = v.stems[o.drum]
            assert np.max(np.abs(x[:at])) < 1e-6 * np.max(np.abs(x)), (seed, o.drum)   # FFT rounding only
            assert np.max(np.abs(x[at:at + 480])) > 0.05 * np.max(np.abs(x)), (seed, o.drum)  # 10 ms


def test_room_responses_are_cached_per_seed_and_rate():
    a = rooms.room_irs(3, SR)
    assert rooms.room_irs(3, SR) is a and set(a) == set(STEMS)
    b = rooms.room_irs(3, 16000)
    for s in STEMS:
        assert np.all(np.isfinite(a[s])) and np.argmax(np.abs(a[s][:48])) == 0
        assert len(b[s]) < len(a[s])
    assert max(abs(a[s][0]) for s in STEMS) == pytest.approx(1.0)


def test_a_share_of_takes_is_varied_evenly():
    assert [rooms.varied(i, 0.5) for i in range(6)] == [False, True] * 3
    assert sum(rooms.varied(i, 0.25) for i in range(40)) == 10
    assert not any(rooms.varied(i, 0.0) for i in range(10)) and all(rooms.varied(i, 1.0) for i in range(10))


def test_render_takes_with_rooms_keep_the_onsets_and_change_the_audio(fixture_kit):
    from rtdrums.engine import Engine
    from rtdrums.preset import load_preset
    from rtdrums.training.trigger_tuning import render_takes

    engine = Engine(load_preset("default"), SR)
    grooves = shipped_grooves("train")[:2]
    dry = render_takes(engine, [fixture_kit], grooves, seconds=3.0)
    wet = render_takes(engine, [fixture_kit], grooves, seconds=3.0, rooms=0.5)
    for a, b in zip(dry, wet):
        assert all(np.array_equal(x, y) for x, y in zip(a.onsets, b.onsets))
    assert np.array_equal(dry[0].act, wet[0].act)                  # the first take stays dry
    assert dry[1].act.shape != wet[1].act.shape or not np.allclose(dry[1].act, wet[1].act)


def _cli(*args):
    return subprocess.run([str(RTDRUMS), *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=900)


@pytest.fixture(scope="module")
def rooms_preset(tmp_path_factory):
    """`rtdrums train --rooms 1` on the fixture kit, tuned and its learned trigger trained on one
    training groove recorded in a room."""
    out = tmp_path_factory.mktemp("rooms") / "preset"
    groove = shipped_grooves("train")[0]
    r = _cli("train", "--kit", KIT, "--out", out, "--rooms", "1", "--tune-grooves", groove,
             "--model-grooves", groove)
    assert r.returncode == 0, r.stderr
    return out


def test_train_with_rooms(rooms_preset):
    from rtdrums.preset import load_preset

    p = load_preset(rooms_preset)
    assert p.provenance["learned_trigger"]["rooms"] == 1.0
    assert p.onset_model is not None
    p.validate()


def test_train_rooms_out_of_range_is_a_one_line_error(tmp_path):
    r = _cli("train", "--kit", KIT, "--out", tmp_path / "x", "--rooms", "1.5")
    assert r.returncode != 0 and "--rooms must be a share between 0" in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_eval_rooms_on_the_fixture_kit(rooms_preset, validation_grooves, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ["eval"])
    from rtdrums.evaluation import results

    scores, runs = {}, []
    for name, extra in (("dry", []), ("rooms", ["--rooms"])):
        out = tmp_path / name
        code = cli.main(["eval", "--kit", str(KIT), "--preset", str(rooms_preset), "--out", str(out),
                         "--grooves", str(validation_grooves[0]), "--seconds", "5",
                         "--baselines", "oracle_masks", *extra])
        err = capsys.readouterr().err
        assert code == 0, err
        res = json.loads((out / "results.json").read_text())
        assert res["rooms"] == (name == "rooms")
        scores[name] = res["methods"]["rtdrums"]["drums"]
        runs += [dict(res, protocol=p) for p in ("calibrated", "left-out")]
        assert "recorded in simulated rooms" in (out / "results.md").read_text() or name == "dry"
    for d in ("kick", "snare", "hihat"):
        assert scores["rooms"][d]["ref"] == scores["dry"][d]["ref"] > 0   # the same hits
        assert 0 <= scores["rooms"][d]["f_50ms"] <= 1
    assert any(scores["rooms"][d]["si_sdr_db"] != scores["dry"][d]["si_sdr_db"] for d in scores["dry"])
    summary = results.summary(runs, "python -m rtdrums.evaluation.results --rooms", None)
    rooms_part = summary.split("## In simulated rooms")[1].split("## Recall by velocity")[0]
    f = " / ".join(f"{scores['rooms'][d]['f_50ms']:.2f}" for d in ("kick", "snare", "hihat"))
    assert rooms_part.count(f"| kit | {f} |") == 2                   # calibrated and left out
    assert summary.split("## In simulated rooms")[0].count(f"| kit | {f} |") == 0 or \
        f == " / ".join(f"{scores['dry'][d]['f_50ms']:.2f}" for d in ("kick", "snare", "hihat"))
    code = cli.main(["eval", "--audio", "x.wav", "--annotations", "a.txt", "--out", str(tmp_path / "a"),
                     "--rooms"])
    err = capsys.readouterr().err
    assert code == 1 and "--rooms varies rendered grooves" in err and err.count("\n") == 1
