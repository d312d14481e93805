"""Fitted velocity curves kept for some drums only (rtdrums.training.velocity_curves)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.offline import separate
from rtdrums.preset import articulations, load_preset, save_preset
from rtdrums.training.onset_training import model_grooves
from rtdrums.training.velocity_curves import exp_curve, main, with_curves
from rtdrums.training.velocity_fit import refit_velocity

SR = 48000


@pytest.fixture(scope="module")
def curved(fixture_kit):
    """The default preset's network with read-outs and curves fitted on the fixture kit."""
    return refit_velocity(load_preset("default"), [fixture_kit], model_grooves()[:8], seconds=10.0)


def _events(preset, render):
    return separate(Engine(preset, SR, max_block=128), render.mix, 128).events


def test_only_the_kept_drums_keep_their_curves_and_the_notes_stay(curved, rendered_groove):
    out = with_curves(curved, ["kick", "snare"])
    group_art = articulations(curved)["group_art"]
    hihat = slice(group_art[2], group_art[3])
    assert np.array_equal(out.onset_model.vel_map[:, :group_art[2]], curved.onset_model.vel_map[:, :group_art[2]])
    assert np.allclose(out.onset_model.vel_map[:, hihat], exp_curve(curved.onset_model.vel_map.shape[3]))
    assert not np.allclose(curved.onset_model.vel_map[:, hihat], out.onset_model.vel_map[:, hihat])
    assert out.provenance["velocity_curves"] == {"fitted": ["kick", "snare"], "exp": ["hihat"]}

    before, after = _events(curved, rendered_groove), _events(out, rendered_groove)
    for key in ("onset", "emitted", "drum", "note"):
        assert np.array_equal(before[key], after[key])
    hat = before["drum"] == 2
    assert hat.sum() > 20
    assert np.array_equal(before["velocity"][~hat], after["velocity"][~hat])
    assert not np.array_equal(before["velocity"][hat], after["velocity"][hat])


def test_exp_curve_is_the_score_as_log_velocity():
    x, y = exp_curve(16)
    assert y[0] == pytest.approx(1 / 127) and y[-1] == 1.0
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)
    assert np.allclose(np.log(y), x)


def test_cli_rewrites_the_preset(curved, tmp_path, capsys):
    folder = save_preset(curved, tmp_path / "p")
    assert main([str(folder), "kick,snare"]) == 0
    assert load_preset(folder).provenance["velocity_curves"]["exp"] == ["hihat"]
    assert "exp(score) for hihat" in capsys.readouterr().out


@pytest.mark.parametrize("drums, words", [("kick,tabla", "unknown drum tabla"), ("", None)])
def test_bad_drums_are_a_one_line_error(curved, tmp_path, capsys, drums, words):
    folder = save_preset(curved, tmp_path / "p")
    code = main([str(folder), drums])
    if words is None:               # no drum kept: every drum maps exp(score)
        assert code == 0
        assert load_preset(folder).provenance["velocity_curves"]["fitted"] == []
        return
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_a_preset_without_curves_is_refused(curved, tmp_path, capsys):
    model = replace(curved.onset_model, vel_map=np.zeros((0, 0, 2, 2)))
    folder = save_preset(replace(curved, onset_model=model), tmp_path / "p")
    assert main([str(folder), "kick,snare"]) == 2
    assert "no fitted velocity curves" in capsys.readouterr().err
