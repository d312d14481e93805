"""Hard negatives in the learned trigger's fit (rtdrums.training.hard_negatives): which outputs of
which frames they are, that weight 1 fits exactly as scikit-learn's network does, and that a
higher weight lowers a drum's probability on the other drums' attacks, on a real render (the
fixture kit playing a validation groove, the default preset's features).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from rtdrums.engine import Engine
from rtdrums.preset import load_preset
from rtdrums.training.ensemble import main
from rtdrums.training.hard_negatives import HardNegativeMLP, hard_negatives
from rtdrums.training.onset_training import fit_weights, frame_labels

DRUMS = ("kick", "snare", "hihat")


def test_hard_negatives_are_the_unstruck_drums_on_another_drums_attack():
    # kick, snare, hi-hat, then one articulation column; hi-hat alone at 1000, hi-hat and snare
    # at 3000, all three at 6000, the articulation at 1000
    cols = [np.array([6000]), np.array([3000, 6000]), np.array([1000, 3000, 6000]), np.array([1000])]
    y = frame_labels(cols, frames=60, hop=128, sample_rate=48000, first_only=True)
    hard = hard_negatives(y > 0, 3)
    assert hard.shape == (60, 3)
    assert np.flatnonzero(hard[:, 0]).tolist() == [7, 8, 23, 24]    # no kick on the hi-hat, nor on hat + snare
    assert np.flatnonzero(hard[:, 1]).tolist() == [7, 8]            # no snare on the hi-hat alone
    assert not hard[:, 2].any()                                     # the hi-hat is struck on every attack
    assert not hard[46:48].any() and not hard[9:11].any()           # all struck; late frames


@pytest.fixture(scope="module")
def fit_data(rendered_groove):
    """Features of the rendered groove with the default's templates (first network's bands) and
    their training labels (drums only, first frames)."""
    preset = load_preset("default")
    m = preset.onset_model
    engine = Engine(preset, 48000, max_block=128)
    _, X = engine.analyse(rendered_groove.mix, m.band_hz, m.short_hz)
    X = (X - m.mean) / m.scale
    onsets = [np.array([round((o.time_s + o.attack_s) * 48000) for o in rendered_groove.onsets if o.drum == d])
              for d in DRUMS]
    y = frame_labels(onsets, len(X), 128, 48000, first_only=True)
    return X, y


def _fit(X, y, weight, iterations=15):
    net = HardNegativeMLP((32,), alpha=1e-3, batch_size=500, learning_rate_init=0.003, max_iter=iterations,
                          random_state=0, shuffle=True)
    net.drums, net.hard_weight = 3, weight
    with pytest.warns(Warning):                  # not converged in so few epochs, by design
        return net.fit(X, y > 0, sample_weight=fit_weights(y))


def test_weight_one_fits_as_scikit_learns_network(fit_data):
    X, y = fit_data
    plain = MLPClassifier((32,), alpha=1e-3, batch_size=500, learning_rate_init=0.003, max_iter=3, random_state=0)
    with pytest.warns(Warning):
        plain.fit(X, y > 0, sample_weight=fit_weights(y))
    mine = _fit(X, y, 1.0, iterations=3)
    for a, b in zip(plain.coefs_ + plain.intercepts_, mine.coefs_ + mine.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_weighted_hard_negatives_lower_the_snares_probability_on_other_drums_attacks(fit_data):
    X, y = fit_data
    hard = hard_negatives(y > 0, 3)[:, 1]
    assert hard.sum() >= 50                       # the groove's hi-hat and kick attacks without a snare
    p1, p8 = (_fit(X, y, w).predict_proba(X)[:, 1] for w in (1.0, 8.0))
    # measured 0.020 -> 0.009: the snare's phantoms on the other drums' attacks fall...
    assert p8[hard].mean() < 0.6 * p1[hard].mean()
    # ...and its own attacks are still found (0.71 -> 0.60)
    assert p8[y[:, 1] > 0].mean() > 0.5 > 20 * p8[hard].mean()


def test_network_cli_refuses_a_weight_that_is_not_positive(capsys, tmp_path):
    out = tmp_path / "net"
    assert main(["network", str(out), "--base", "default", "--kit", "tests/fixtures/kit", "--seed", "1",
                 "--hard-negatives", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--hard-negatives" in err and not out.exists()


def test_hat_takes_are_open_hat_windows_played_by_every_kit_in_pairs():
    from rtdrums.training.onset_training import hat_takes, open_hat_windows
    from rtdrums.training.render import load_groove

    windows = open_hat_windows()
    assert len(windows) == 40
    grooves, kits = hat_takes(["a", "b", "c"], 12, seed=1)
    assert kits == ["a", "a", "b", "b", "c", "c"] * 2
    assert len(set(grooves)) == 12 and set(grooves) <= set(windows)
    for g in grooves:                     # each rich in open hi-hat strokes (notes 46 and 26)
        assert sum(note in (46, 26) for t, note, _ in load_groove(g) if t < 15.0) >= 15, g.name
    assert hat_takes(["a", "b", "c"], 12, seed=2)[0] != grooves


def test_network_with_hat_takes_trains_on_them(fixture_kit):
    """A network retrained on one model cut and one open-hat take of the fixture kit saw both."""
    from dataclasses import replace

    from rtdrums.training.ensemble import train_network

    shipped = load_preset("default")
    base = replace(shipped, onset_model=shipped.onset_model.networks[0])
    net = train_network(base, [fixture_kit], [], seed=1, every=240, rooms=0.0, hard_negative_weight=4.0,
                        hat_takes=1)
    record = net.provenance["learned_trigger"]
    assert (record["grooves"], record["hat_takes"], record["hard_negative_weight"]) == (2, 1, 4.0)
    assert net.onset_model.threshold == base.onset_model.threshold
