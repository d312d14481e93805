"""The learned trigger's velocity read-out (rtdrums.training.velocity_fit, onset_model.vel_map): the
compiled curve is the fitted one, presets without a curve send the linear read-out as before, and on
real renders of the fixture kit the read-out follows the played velocity.

fixture_preset (conftest) is the fixture kit's calibrated preset, trained with the curves.
"""
from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from rtdrums.dsp.onset_model import SCANS, mapped_velocity
from rtdrums.engine import Engine
from rtdrums.errors import UserError
from rtdrums.offline import separate
from preset_files import saved_with_arrays_edited
from rtdrums.preset import articulations, load_preset, save_preset
from rtdrums.training.render import render_groove
from rtdrums.training.velocity_fit import apply_curve, fit_readout, monotone_curve

SR = 48000
MIN_R = (0.93, 0.85, 0.88)      # kick, snare, hi-hat


def test_the_detector_evaluates_the_fitted_curve():
    """mapped_velocity (compiled) gives np.interp of the curve, flat beyond its ends; NaN -> softest."""
    rng = np.random.default_rng(1)
    score = np.sort(rng.normal(size=300))
    curve = monotone_curve(score, np.clip(0.5 + 0.3 * score + 0.05 * rng.normal(size=300), 0, 1))
    assert np.all(np.diff(curve[0]) > 0) and np.all(np.diff(curve[1]) >= 0)
    maps = np.stack([curve, curve[:, ::-1] * [[-1], [1]]])[:1]
    for v in np.linspace(-5, 5, 41):
        assert mapped_velocity(v, maps, 0) == pytest.approx(apply_curve(v, curve), abs=1e-12)
    assert mapped_velocity(np.nan, maps, 0) == curve[1, 0]
    assert mapped_velocity(0.3, np.zeros((0, 2, 2)), 0) == 0.3          # no map: the read-out itself


def test_a_curve_per_articulation_undoes_their_levels():
    """Two articulations whose score is offset by their recorded level get curves that send the
    same velocity for the same played velocity; a rare one falls back to the pooled curve."""
    rng = np.random.default_rng(2)
    vel = rng.integers(20, 128, 400)
    art = np.where(np.arange(400) < 200, 3, 4)
    level = np.log(vel / 127) * 1.5 + np.where(art == 4, 1.0, 0.0)     # art 4 recorded 1.0 louder
    X = np.column_stack([level + 0.01 * rng.normal(size=400), rng.normal(size=400)])
    r = fit_readout(X, vel, art, range(3, 6))
    score = X @ r.w + r.b
    got = np.array([apply_curve(s, r.curves[a - 3]) for s, a in zip(score, art)]) * 127
    assert np.corrcoef(got, vel)[0, 1] > 0.97
    both = (vel > 40) & (vel < 120)
    for a in (3, 4):
        m = both & (art == a)
        assert np.median(np.abs(got[m] - vel[m])) < 6, a
    pooled = monotone_curve(score, vel / 127)
    np.testing.assert_allclose(r.curves[2], pooled)                         # art 5: no hits


def _readout_velocity(preset, features, d):
    """The linear read-out of drum d on raw features, as a preset without curves sends it."""
    m = preset.onset_model
    v = ((features - m.mean) / m.scale) @ m.vel_w[0, :, d] + m.vel_b[0, d]
    return np.clip(np.floor(127 * v + 0.5), 1, 127)


def test_a_preset_without_curves_loads_and_sends_the_linear_read_out(fixture_preset, tmp_path,
                                                                     rendered_groove):
    """A preset saved before vel_map (no model_vel_map in its templates.npz) loads with an empty
    map, and each note's velocity is its decision frame's linear read-out, as before the curves."""
    folder = saved_with_arrays_edited(fixture_preset, tmp_path / "p", lambda z: z.pop("model_vel_map"))
    old = load_preset(folder)
    assert old.onset_model.vel_map.size == 0
    x = rendered_groove.mix[:8 * SR]
    engine = Engine(old, SR, max_block=128)
    _, feats = engine.analyse(x, old.onset_model.band_hz, old.onset_model.short_hz)
    ev = separate(engine, x, 128).events
    assert len(ev) > 20
    hop = engine.settings.hop
    rows = (ev["onset"].astype(np.int64) + engine.params.onset_offset) // hop - 1
    for d in range(len(old.drums)):
        mine = ev["drum"] == d
        expected = _readout_velocity(old, feats[rows[mine]].astype(np.float64), d)
        # features are float32 in the analysis, float64 live: a velocity may round the other way
        assert np.abs(ev["velocity"][mine] - expected).max() <= 1, d


def test_a_preset_without_hidden_weights_sends_the_read_out_of_its_features(fixture_preset, tmp_path,
                                                                            rendered_groove):
    """The fixture preset's read-out also weighs its network's hidden units (vel_h); saved without
    them (as before they existed) it loads with an empty vel_h, decides and picks notes exactly as
    with them, and sends each note the features' read-out on its articulation's curve."""
    m = fixture_preset.onset_model
    D = len(fixture_preset.drums)
    assert m.vel_h.shape == (SCANS, m.b1.shape[0], D) and np.any(m.vel_h != 0)
    folder = saved_with_arrays_edited(fixture_preset, tmp_path / "p", lambda z: z.pop("model_vel_h"))
    old = load_preset(folder)
    assert old.onset_model.vel_h.size == 0
    x = rendered_groove.mix[:8 * SR]
    engine = Engine(old, SR, max_block=128)
    _, feats = engine.analyse(x, m.band_hz, m.short_hz)
    ev = separate(engine, x, 128).events
    with_hidden = separate(Engine(fixture_preset, SR, max_block=128), x, 128).events
    for key in ("onset", "emitted", "drum", "note"):
        assert np.array_equal(ev[key], with_hidden[key]), key
    assert len(ev) > 20 and not np.array_equal(ev["velocity"], with_hidden["velocity"])
    art = articulations(old)
    note_art = {(d, n): a for d in range(D) for a in range(art["group_art"][d], art["group_art"][d + 1])
                for n in [old.drums[d].notes[art["art_start"][a] - art["group_start"][d]]]}
    rows = (ev["onset"].astype(np.int64) + engine.params.onset_offset) // engine.settings.hop - 1
    for e, row in zip(ev, rows):
        d = int(e["drum"])
        score = (feats[row].astype(np.float64) - m.mean) / m.scale @ m.vel_w[0, :, d] + m.vel_b[0, d]
        v = apply_curve(score, m.vel_map[0, note_art[(d, int(e["note"]))]])
        # features are float32 in the analysis, float64 live: a velocity may round the other way
        assert abs(int(e["velocity"]) - min(127, max(1, int(127 * v + 0.5)))) <= 1, (d, row)


def test_curves_are_kept_and_checked_in_the_preset(fixture_preset, tmp_path):
    m = fixture_preset.onset_model
    A = int(articulations(fixture_preset)["group_art"][len(fixture_preset.drums)])
    assert m.vel_map.shape[:3] == (SCANS, A, 2)
    np.testing.assert_array_equal(load_preset(save_preset(fixture_preset, tmp_path / "p")).onset_model.vel_map,
                                  m.vel_map)
    folder = saved_with_arrays_edited(fixture_preset, tmp_path / "q", lambda z: z.update(
        model_vel_map=z["model_vel_map"][:, :, :, ::-1].copy()))                   # knots decreasing
    with pytest.raises(UserError, match="vel_map"):
        load_preset(folder)


def test_velocity_follows_the_played_velocity_on_grooves(fixture_preset, fixture_kit, validation_grooves):
    """On the validation grooves (20 s each) the velocities sent at the decision (scan 0) correlate
    with the played ones at least MIN_R per drum. Measured: 0.96 / 0.87 / 0.90 (kick / snare /
    hi-hat); the same network's linear read-out of all features gave 0.90 / 0.87 / 0.89."""
    with_curves = Engine(fixture_preset, SR, max_block=128)
    pairs = {d: [] for d in range(len(fixture_preset.drums))}
    for g in validation_grooves:
        r = render_groove(g, fixture_kit, sample_rate=SR, max_seconds=20.0)
        with_curves.reset()
        ev = separate(with_curves, r.mix, 128).events
        for d, name in enumerate(with_curves.drum_names):
            mine = ev[ev["drum"] == d]
            true = [o for o in r.onsets if o.drum == name]
            for i, j in mir_eval.util.match_events(np.array([o.time_s for o in true]),
                                                   mine["onset"] / SR, 0.05):
                pairs[d].append((true[i].velocity, mine["velocity"][j]))
    for d, p in pairs.items():
        p = np.array(p, float)
        assert len(p) > 40, d
        r = np.corrcoef(p[:, 0], p[:, 1])[0, 1]
        assert r >= MIN_R[d], (d, r)
