"""The learned trigger: what training sees is what the engine computes, presets keep it, and bad
model arrays are refused in one line.

fixture_preset (conftest) is the fixture kit's calibrated preset, whose training ends with the
onset model (rtdrums.training.onset_training); its quality on the validation grooves is checked in
test_engine.test_triggers_on_rendered_real_kit_grooves.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.errors import UserError
from rtdrums.training.onset_training import frame_labels, pick, record_features
from preset_files import saved_with_arrays_edited
from rtdrums.preset import load_preset, save_preset


@pytest.fixture(scope="module")
def clip(rendered_groove):
    """The first 6 s of the rendered validation groove."""
    return np.ascontiguousarray(rendered_groove.mix[:6 * 48000])


def _stream_features(preset, x):
    """The engine's own features and events, fed one hop at a time, on the reference kernels
    (training analyses with them; the lean kernels' float32 rounding is tested in test_lean.py)."""
    engine = Engine(preset, 48000, max_block=128, lean=False)
    hop = engine.settings.hop
    feats, events = [], []
    for m in range(len(x) // hop):
        _, ev = engine.process(x[m * hop:(m + 1) * hop])
        feats.append(engine.state.feat.copy())
        # the frame of the decision, from the onset estimate (its end minus onset_offset)
        events += [((int(e["onset"]) + engine.params.onset_offset) // hop - 1, int(e["drum"]),
                    m - ((int(e["onset"]) + engine.params.onset_offset) // hop - 1)) for e in ev]
    return np.array(feats), events


def test_training_sees_the_engines_features_and_decisions(fixture_preset, clip):
    """record_features (training, no model) gives the features the engine computes live; the
    network run in numpy on them, with pick(), decides in exactly the engine's frames."""
    m = fixture_preset.onset_model
    live, events = _stream_features(fixture_preset, clip)
    offline = record_features(Engine(replace(fixture_preset, onset_model=None), 48000, max_block=128),
                              clip, m.band_hz)
    assert live.shape == offline.shape and live.shape[1] == m.n_features
    np.testing.assert_allclose(offline, live.astype(np.float32), rtol=1e-6, atol=1e-5)

    z = np.maximum((live - m.mean) / m.scale @ m.w1 + m.b1, 0) @ m.w2 + m.b2
    prob = 1 / (1 + np.exp(-z))
    retrig = -(-round(m.retrigger_ms * 48) // 128)
    for d in range(len(fixture_preset.drums)):
        expected = set(pick(prob[:, d], m.threshold[d], retrig).tolist())
        got = {f for f, dd, _ in events if dd == d}
        # the engine folds the standardisation into the weights: only a probability within
        # rounding of the threshold may fall the other way
        for f in expected ^ got:
            assert abs(prob[f, d] - m.threshold[d]) < 1e-6, (d, f, prob[f, d])
        assert len(expected ^ got) <= 2, (d, expected ^ got)
    assert {dd for _, dd, _ in events} == {0, 1, 2}
    # the note-on leaves with the decision (scan 0, the default)
    assert {wait for _, _, wait in events} == {0}


def test_sensitivity_lowers_the_learned_threshold(fixture_preset, clip):
    # sensitivity s lowers the threshold's logit by log(s): a tenfold one moves it by 2.3, which
    # the network's confident probabilities need before the hi-hat count changes on 6 s
    counts = []
    for sens in (0.1, 1.0, 10.0):
        engine = Engine(fixture_preset.with_drum("hihat", sensitivity=sens), 48000, max_block=128)
        n = 0
        for start in range(0, len(clip), 128):
            _, ev = engine.process(clip[start:start + 128])
            n += int(np.sum(ev["drum"] == 2))
        counts.append(n)
    assert counts[0] <= counts[1] <= counts[2] and counts[0] < counts[2], counts


def test_frame_labels_mark_the_first_frames_after_each_hit_and_leave_the_next_out():
    from rtdrums.training.onset_training import fit_weights

    y = frame_labels([np.array([1000]), np.array([], np.int64)], frames=20, hop=128, sample_rate=48000)
    # frames end at 128 (m + 1); by default a hit at sample 1000 is struck in the frames ending
    # 1024 .. 1408 (LATE_MS, 10.7 ms)
    assert np.flatnonzero(y[:, 0] == 1).tolist() == [7, 8, 9, 10] and not y[:, 1].any()
    assert not np.any(fit_weights(y) == 0)
    # first frames only: struck in those ending 1024 and 1152 (LABEL_MS, 5.4 ms), the late ones
    # left out of the fit
    y = frame_labels([np.array([1000]), np.array([], np.int64)], frames=20, hop=128, sample_rate=48000,
                     first_only=True)
    assert np.flatnonzero(y[:, 0] == 1).tolist() == [7, 8] and not y[:, 1].any()
    assert np.flatnonzero(y[:, 0] == -1).tolist() == [9, 10]
    assert np.flatnonzero(fit_weights(y) == 0).tolist() == [9, 10]
    # an onset's own late span (an open hi-hat's 16 ms: up to 1000 + 768 samples)
    y = frame_labels([np.array([1000, 3000])], frames=40, hop=128, sample_rate=48000,
                     late_ms=[np.array([16.0, 10.7])], first_only=True)
    assert np.flatnonzero(y[:, 0] == 1).tolist() == [7, 8, 23, 24]
    assert np.flatnonzero(y[:, 0] == -1).tolist() == [9, 10, 11, 12, 25, 26]
    # first frames only for some onsets (the open hi-hats, OPEN_FIRST_FRAMES_ONLY): the other
    # onset's late frames stay struck
    y = frame_labels([np.array([1000, 3000])], frames=40, hop=128, sample_rate=48000,
                     late_ms=[np.array([16.0, 10.7])], first_only=[np.array([True, False])])
    assert np.flatnonzero(y[:, 0] == 1).tolist() == [7, 8, 23, 24, 25, 26]
    assert np.flatnonzero(y[:, 0] == -1).tolist() == [9, 10, 11, 12]


def test_training_labels_start_at_each_hits_attack(fixture_preset, lead_in_kit, groove_file):
    """A soft snare that rises out of 5 ms of noise is labelled struck from its attack on, not
    from its first audible sample; the takes keep the true onsets (the metrics' reference)."""
    from rtdrums.dsp.onset_model import default_band_hz
    from rtdrums.training.onset_training import _record

    times = [0.5 + 0.25 * k for k in range(12)]
    groove = groove_file([(t, 38, 20 if k % 2 else 120) for k, t in enumerate(times)])
    engine = Engine(replace(fixture_preset, onset_model=None), 48000, max_block=128)
    X, labels, takes = _record(engine, [lead_in_kit], [groove], 4.0, default_band_hz(), None)
    (take,) = takes
    snare = take.onsets[1]
    assert 8 <= len(snare) <= 12                       # a 0.3 s gate may silence one or two hits
    attack = snare + np.where(np.isin(snare, np.round(np.array(times[1::2]) * 48000)), 240, 0)
    assert np.array_equal(labels[:, 1], frame_labels([attack], len(X), 128, 48000)[:, 0])
    assert not np.array_equal(labels[:, 1], frame_labels([snare], len(X), 128, 48000)[:, 0])


def test_features_are_gathered_in_one_matrix_and_standardised_in_place():
    from rtdrums.training.onset_training import _rows_written, _standardise, _Take

    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, (m, 5)).astype(np.float32) for m in (7, 4, 9)]
    buf, n, takes = None, 0, []
    for X in chunks:                              # capacity 8: grown twice
        buf = _rows_written(buf, n, X, capacity=8)
        takes.append(_Take(n, n + len(X), [], []))
        n += len(X)
    X = buf[:n]
    stacked = np.concatenate(chunks)
    assert len(buf) >= n and np.array_equal(X, stacked)
    mean, scale = _standardise(X, takes)
    np.testing.assert_allclose(mean, stacked.mean(axis=0, dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(scale, stacked.std(axis=0, dtype=np.float64), rtol=1e-9)
    np.testing.assert_allclose(X, (stacked - mean) / scale, rtol=1e-6, atol=1e-6)


def test_pick_keeps_the_retrigger_time():
    p = np.array([0, .9, .9, 0, .9, 0, 0, .9, .2, .95])
    assert pick(p, 0.5, 3).tolist() == [1, 4, 7]
    assert pick(p, 0.92, 3).tolist() == [9]


def test_preset_keeps_the_model(fixture_preset, tmp_path):
    loaded = load_preset(save_preset(fixture_preset, tmp_path / "p"))
    a, b = fixture_preset.onset_model, loaded.onset_model
    assert b is not None and a.threshold == b.threshold and a.retrigger_ms == b.retrigger_ms
    for name in a.ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert "[onset_model]" in (tmp_path / "p" / "preset.toml").read_text()


@pytest.mark.parametrize("damage, words", [
    (lambda z: z.update(model_w1=z["model_w1"][:, :-1]), ("w1", "shape")),
    (lambda z: z.update(model_vel_b=z["model_vel_b"] * np.nan), ("vel_b", "nan")),
    (lambda z: z.pop("model_b2"), ("corrupt", "model_b2")),
    (lambda z: z.update(model_scale=-z["model_scale"]), ("scale",)),
])
def test_damaged_model_is_refused_in_one_line(fixture_preset, tmp_path, damage, words):
    folder = saved_with_arrays_edited(fixture_preset, tmp_path / "p", damage)
    with pytest.raises(UserError) as err:
        load_preset(folder)
    msg = str(err.value)
    assert "\n" not in msg and all(w.lower() in msg.lower() for w in words), msg


def test_bad_threshold_is_refused(fixture_preset, tmp_path):
    folder = save_preset(fixture_preset, tmp_path / "p")
    toml = folder / "preset.toml"
    toml.write_text(toml.read_text().replace("[onset_model]\nthreshold = [", "[onset_model]\nthreshold = [1.5, "))
    with pytest.raises(UserError, match="threshold"):
        load_preset(folder)


@pytest.mark.parametrize("open_first", [True, False])
def test_open_hihat_frames_after_its_first_are_left_out_only_with_the_setting(fixture_kit, groove_file,
                                                                              monkeypatch, open_first):
    """OPEN_FIRST_FRAMES_ONLY: an open hi-hat's frames after LABEL_MS get weight 0 (-1), a closed
    one's stay struck up to LATE_MS."""
    from rtdrums.dsp.onset_model import default_band_hz
    from rtdrums.training import onset_training

    monkeypatch.setattr(onset_training, "OPEN_FIRST_FRAMES_ONLY", open_first)
    times = [0.5 + 0.25 * k for k in range(12)]
    groove = groove_file([(t, 46 if k % 2 else 42, 100) for k, t in enumerate(times)])
    engine = Engine(replace(load_preset("default"), onset_model=None), 48000, max_block=128)
    X, labels, takes = onset_training._record(engine, [fixture_kit], [groove], 4.0, default_band_hz(), None)
    hihat = labels[:, 2]
    assert (hihat == 1).sum() >= 8 * 2                  # every hit's first frames struck
    assert ((hihat == -1).sum() > 0) == open_first
    if open_first:                                      # left out: the open hats' frames only
        late = np.flatnonzero(hihat == -1) * 128
        opens = np.round(np.array(times[1::2]) * 48000)
        assert np.all(np.min(np.abs(late[:, None] - opens[None, :] - 1000), axis=1) < 1400)
