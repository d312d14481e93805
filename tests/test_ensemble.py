"""A learned trigger of several networks (rtdrums.training.ensemble, rtdrums.dsp.onset_model):
the engine decides on the networks' mean probability, averages their velocities, streams whole =
chunked = after reset, presets keep every network, and presets that do not fit are refused in
one line.

The second network is a real one: the shipped default's learned trigger retrained from another
seed on a few model grooves rendered with the fixture kit (train_network).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chunks import process_in_random_chunks
from rtdrums.engine import Engine
from rtdrums.errors import UserError
from preset_files import saved_with_arrays_edited
from rtdrums.preset import load_preset, save_preset
from rtdrums.training.ensemble import join, main, train_network
from rtdrums.training.learned_thresholds import with_both
from rtdrums.training.onset_training import pick
from rtdrums.training.velocity_fit import apply_curve


@pytest.fixture(scope="module")
def default():
    """The shipped default with one network, its first, deciding alone (no threshold detector
    beside it on the kick)."""
    shipped = with_both(load_preset("default"), [])
    return replace(shipped, onset_model=shipped.onset_model.networks[0])


@pytest.fixture(scope="module")
def other(default, fixture_kit):
    """That preset with its learned trigger retrained from seed 1 on 12 model grooves."""
    return train_network(default, [fixture_kit], [], seed=1, every=20, rooms=0.0)


@pytest.fixture(scope="module")
def pair(default, other):
    return join([default, other], ["default", "other"])


@pytest.fixture(scope="module")
def clip(rendered_groove):
    return np.ascontiguousarray(rendered_groove.mix[:8 * 48000])


def _run(preset, x):
    """Features of every hop and the events, with each event's decision frame."""
    engine = Engine(preset, 48000, max_block=128)
    hop, feats, events = engine.settings.hop, [], []
    for m in range(len(x) // hop):
        _, ev = engine.process(x[m * hop:(m + 1) * hop])
        feats.append(engine.state.feat.copy())
        events += [(m, e) for e in ev.copy()]
    return np.array(feats), events


def _outputs(m, feats):
    """Probabilities (frames, D + A) of one network, in numpy."""
    z = np.maximum((feats - m.mean) / m.scale @ m.w1 + m.b1, 0) @ m.w2 + m.b2
    return 1 / (1 + np.exp(-z))


def test_retrained_network_keeps_the_base_thresholds_and_differs(default, other):
    assert other.onset_model.threshold == default.onset_model.threshold
    assert other.provenance["learned_trigger"]["seed"] == 1
    np.testing.assert_array_equal(other.W, default.W)
    assert not np.allclose(other.onset_model.w1, default.onset_model.w1)


def test_ensemble_decides_on_the_mean_probability_and_averages_velocities(default, other, pair, clip):
    nets = pair.onset_model.networks
    assert len(nets) == 2
    feats, events = _run(pair, clip)
    probs = [_outputs(m, feats) for m in nets]
    mean = sum(probs) / 2
    m0 = pair.onset_model
    retrig = -(-round(m0.retrigger_ms * 48) // 128)
    D = len(pair.drums)
    assert {e["drum"] for _, e in events} == {0, 1, 2}
    for d in range(D):
        expected = set(pick(mean[:, d], m0.threshold[d], retrig).tolist())
        got = {f for f, e in events if e["drum"] == d}
        for f in expected ^ got:         # only a probability within rounding of the threshold
            assert abs(mean[f, d] - m0.threshold[d]) < 1e-9, (d, f)
        assert len(expected ^ got) <= 1
    # and somewhere the pair decides differently from either network alone
    assert any(set(pick(mean[:, d], 0.5, retrig).tolist()) != set(pick(p[:, d], 0.5, retrig).tolist())
               for d in range(D) for p in probs)
    from rtdrums.preset import articulations
    group_art, art_start = articulations(pair)["group_art"], articulations(pair)["art_start"]
    notes = [n for d in pair.drums for n in d.notes]
    for f, e in events:
        d = int(e["drum"])
        arts = range(group_art[d], group_art[d + 1])
        best = max(arts, key=lambda a: mean[f, D + a])
        assert e["note"] == notes[art_start[best]]
        vel = 0.0
        for m in nets:                   # scan 0: the read-out of the decision frame and the network's hidden units
            x = (feats[f] - m.mean) / m.scale
            score = x @ m.vel_w[0, :, d] + m.vel_b[0, d]
            if m.vel_h.size:
                score += np.maximum(x @ m.w1 + m.b1, 0) @ m.vel_h[0, :, d]
            vel += apply_curve(score, m.vel_map[0, best]) if m.vel_map.size else score
        assert abs(int(e["velocity"]) - min(127, max(1, round(127 * vel / 2)))) <= 1


def test_one_network_twice_is_that_network(default, clip):
    """Two copies of a network decide, pick notes and velocities exactly as it does alone."""
    _, alone = _run(default, clip)
    twice_preset = join([default, default])
    assert len(twice_preset.onset_model.networks) == 2
    _, twice = _run(twice_preset, clip)
    assert len(alone) == len(twice) > 20
    for (fa, a), (fb, b) in zip(alone, twice):
        assert fa == fb and a.tobytes() == b.tobytes()


def test_ensemble_streams_whole_chunked_and_after_reset_alike(pair, clip):
    from rtdrums.offline import separate

    x = clip[:4 * 48000]
    engine = Engine(pair, 48000, max_block=8192)
    whole = separate(engine, x, block=8192)
    engine.reset()
    stems, chunked = process_in_random_chunks(engine, x)
    lat = engine.stem_latency
    np.testing.assert_array_equal(stems[lat:], whole.stems[:len(x) - lat])
    assert len(whole.events) > 5
    for field in ("onset", "drum", "note", "velocity"):       # `emitted` is the end of each block
        np.testing.assert_array_equal(chunked[field], whole.events[field])
    engine.reset()
    again = separate(engine, x, block=8192)
    np.testing.assert_array_equal(again.stems, whole.stems)
    assert again.events.tobytes() == whole.events.tobytes()


def test_preset_keeps_every_network_and_one_network_keeps_the_old_format(default, pair, tmp_path):
    loaded = load_preset(save_preset(pair, tmp_path / "pair"))
    assert len(loaded.onset_model.networks) == 2
    for a, b in zip(pair.onset_model.networks, loaded.onset_model.networks):
        for name in a.ARRAYS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert "networks = 2" in (tmp_path / "pair" / "preset.toml").read_text()
    one = save_preset(default, tmp_path / "one")
    assert "networks" not in (one / "preset.toml").read_text().split("[onset_model]")[1]
    with np.load(one / "templates.npz") as z:
        assert not any(k.startswith("model2_") for k in z.files)


@pytest.mark.parametrize("damage, words", [
    (lambda z: z.update(model2_w1=z["model2_w1"][:, :-1]), ("network 2", "w1", "shape")),
    (lambda z: z.update(model2_b2=z["model2_b2"] * np.nan), ("network 2", "b2", "nan")),
    (lambda z: z.pop("model2_w2"), ("corrupt", "model2_w2")),
])
def test_damaged_second_network_is_refused_in_one_line(pair, tmp_path, damage, words):
    folder = saved_with_arrays_edited(pair, tmp_path / "p", damage)
    with pytest.raises(UserError) as err:
        load_preset(folder)
    msg = str(err.value)
    assert "\n" not in msg and all(w.lower() in msg.lower() for w in words), msg


def test_presets_that_do_not_share_features_are_refused(default, other, tmp_path, capsys):
    with pytest.raises(UserError, match="no learned trigger"):
        join([default, replace(other, onset_model=None)], ["default", "plain"])
    with pytest.raises(UserError, match="solver settings"):
        join([default, replace(other, solver=replace(other.solver, iterations=other.solver.iterations + 1))])
    bands = other.onset_model.band_hz
    with pytest.raises(UserError, match="learned-trigger bands"):
        join([default, replace(other, onset_model=replace(other.onset_model, band_hz=bands * 1.01))])
    ulps = replace(other, onset_model=replace(other.onset_model, band_hz=np.nextafter(bands, np.inf)))
    assert len(join([default, ulps]).onset_model.networks) == 2     # another numpy's geomspace
    moved = save_preset(replace(other, W=other.W * 1.01), tmp_path / "moved")
    out = tmp_path / "out"
    assert main(["join", str(out), "default", str(moved)]) == 2      # the shipped ensemble, refused too
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "differs in its templates" in err and not out.exists()


def test_shipped_default_is_an_ensemble_on_one_set_of_features(tmp_path):
    shipped = load_preset("default")
    nets = shipped.onset_model.networks
    assert len(nets) == len(shipped.provenance["ensemble"]["from"]) > 1
    assert all(n.w1.shape == nets[0].w1.shape and not np.array_equal(n.w1, nets[0].w1) for n in nets[1:])


def test_join_cli_writes_the_ensemble(default, other, tmp_path, capsys):
    save_preset(other, tmp_path / "other")
    save_preset(default, tmp_path / "one")
    assert main(["join", str(tmp_path / "pair"), str(tmp_path / "one"), str(tmp_path / "other")]) == 0
    assert "2 network(s)" in capsys.readouterr().out
    loaded = load_preset(tmp_path / "pair")
    assert loaded.provenance["ensemble"]["networks"] == 2
    np.testing.assert_array_equal(loaded.onset_model.members[0].w1, other.onset_model.w1)


def test_an_ensemble_joined_in_gives_all_of_its_networks_in_order(default, other, pair, tmp_path):
    from rtdrums.training.learned_thresholds import with_thresholds

    save_preset(with_thresholds(other, [0.3, 0.3, 0.3]), tmp_path / "other")
    save_preset(pair, tmp_path / "pair")
    assert main(["join", str(tmp_path / "three"), str(tmp_path / "other"), str(tmp_path / "pair")]) == 0
    three = load_preset(tmp_path / "three")
    assert three.onset_model.threshold == (0.3, 0.3, 0.3)
    assert [f["networks"] for f in three.provenance["ensemble"]["from"]] == [1, 2]
    for got, want in zip(three.onset_model.networks, [other.onset_model, default.onset_model, other.onset_model]):
        np.testing.assert_array_equal(got.w1, want.w1)
    assert len(three.onset_model.networks) == 3


def test_thresholds_of_an_ensemble_are_set_once_for_all_networks(pair, clip, tmp_path):
    from rtdrums.training.learned_thresholds import with_thresholds

    strict = load_preset(save_preset(with_thresholds(pair, [0.9, 0.9, 0.9]), tmp_path / "strict"))
    assert len(strict.onset_model.networks) == 2 and strict.onset_model.threshold == (0.9, 0.9, 0.9)
    _, loose_events = _run(pair, clip)
    _, strict_events = _run(strict, clip)
    assert 0 < len(strict_events) < len(loose_events)
