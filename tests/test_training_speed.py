"""The fast training of a soundcheck: the learned trigger fine-tuned from the base preset's, float32
features and templates, the chosen model grooves, the progress line with its time left, and
`rtdrums train` on a simulated soundcheck of the fixture kit (rtdrums.training.soundcheck)."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from rtdrums.training.kits import load_kit
from rtdrums.dsp.nmf import nmf
from rtdrums.dsp.onset_model import default_band_hz
from rtdrums.training.onset_training import (SHORT_HZ, _record, fine_tune_start, record_features,
                                    train_onset_model)
from rtdrums.preset import load_preset
from rtdrums.progress import Progress, Stage
from rtdrums.training.render import render_groove, shipped_grooves
from rtdrums.training.train import FAST, FULL, hits_from_folder, learned_grooves, train

KIT = Path(__file__).parent / "fixtures" / "kit"


@pytest.fixture(scope="module")
def soundcheck(tmp_path_factory):
    """A soundcheck of the fixture kit, 12 strokes per drum, as a drummer records it."""
    from rtdrums.training.soundcheck import write_soundcheck

    return write_soundcheck(load_kit(KIT), tmp_path_factory.mktemp("soundcheck"), strokes=12)


@pytest.fixture(scope="module")
def soundcheck_preset(soundcheck):
    """Templates and cross-talk from the soundcheck, settings of the default preset (no tuning)."""
    from threadpoolctl import threadpool_limits

    base = load_preset("default")
    hits, prov = hits_from_folder(soundcheck, 48000)
    with threadpool_limits(limits=1, user_api="blas"):
        return train(hits, prov, "soundcheck", settings=base.stft, base=base)


def test_soundcheck_folder_has_twelve_strokes_per_drum(soundcheck):
    hits, _ = hits_from_folder(soundcheck, 48000)
    # split_hits misses a stroke or two: the fixture snare's softest (velocity 30), and open-hat
    # strokes that rise less than 12 dB over the previous one still ringing
    for category, least in [("kick", 12), ("snare", 11), ("hihat_closed", 12), ("hihat_open", 10),
                            ("hihat_pedal", 12)]:
        assert least <= len(hits[category]) <= 12, category
        v = sorted(x for _, x in hits[category])
        assert v[0] < 0.5 and v[-1] == 1.0                 # soft to loud


def test_float32_templates_match_float64():
    rng = np.random.default_rng(0)
    V = rng.random((300, 200)) ** 4
    W64, H64 = nmf(V, 4, 100)
    W32, H32 = nmf(V, 4, 100, dtype=np.float32)
    assert W32.dtype == np.float32 and W64.dtype == np.float64
    np.testing.assert_allclose(W32, W64, atol=1e-4 * W64.max())


def test_features_are_recorded_in_float32(soundcheck_preset, fixture_kit):
    from rtdrums.engine import Engine

    engine = Engine(soundcheck_preset, max_block=128)
    groove = shipped_grooves("model")[:2]
    X, labels, takes = _record(engine, [fixture_kit], groove, 3.0, default_band_hz(), None)
    assert X.dtype == np.float32 and labels.dtype == np.int8
    assert len(takes) == 2 and takes[1].stop == len(X)
    # rows as the engine computes them for each take alone, written in order (two workers)
    r = render_groove(groove[0], fixture_kit, 48000, max_seconds=3.0)
    assert X[takes[0].start:takes[0].stop].shape == record_features(engine, r.mix, default_band_hz()).shape


def test_fast_schedule_spreads_its_model_grooves():
    every = shipped_grooves("model")
    chosen = learned_grooves(None, FAST)
    assert len(chosen) == FAST.model_grooves == 48 and len(set(chosen)) == 48
    assert chosen[0] == every[0] and chosen[-1] == every[-1]
    assert any("_from" in p.name for p in chosen)        # open hi-hat windows are among them
    assert learned_grooves(None, FULL) == every
    assert learned_grooves(every[:3], FAST) == every[:3]


def test_fine_tune_start_carries_the_base_network_over(soundcheck_preset, fixture_kit):
    """The band and short-window features mean the same under any templates: on real features of
    a groove, the started network's hidden layer gets from them exactly what the base's got."""
    from rtdrums.engine import Engine

    base = load_preset("default")
    m = base.onset_model
    r = render_groove(shipped_grooves("validation")[0], fixture_kit, 48000, max_seconds=4.0)
    X = record_features(Engine(soundcheck_preset, max_block=128), r.mix, default_band_hz())
    X0 = record_features(Engine(replace_model(base), max_block=128), r.mix, default_band_hz())
    mean, scale = X.mean(axis=0), X.std(axis=0) + 0.5
    start = fine_tune_start(base, soundcheck_preset, mean, scale)
    assert start is not None and start.w1.shape == (X.shape[1], m.b1.shape[0])
    B, S = len(m.band_hz) - 1, len(SHORT_HZ) - 1
    Z, Z0 = X.shape[1] // 4, X0.shape[1] // 4
    new_cols = np.concatenate([np.r_[0:B, Z - S:Z] + lag * Z for lag in range(4)])
    old_cols = np.concatenate([np.r_[0:B, Z0 - S:Z0] + lag * Z0 for lag in range(4)])
    np.testing.assert_array_equal(X[:, new_cols], X0[:, old_cols])
    mine = ((X - mean) / scale)[:, new_cols] @ start.w1[new_cols] + start.b1
    theirs = ((X0 - m.mean) / m.scale)[:, old_cols] @ m.w1[old_cols] + m.b1
    np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())
    # the outputs are the base's, drums and hi-hat articulations alike
    np.testing.assert_array_equal(start.w2, m.w2)
    # a start with other bands cannot be carried over
    other = replace_model(base, band_hz=np.geomspace(40, 16000, 81))
    assert fine_tune_start(other, soundcheck_preset, mean, scale) is None


def replace_model(p, **changes):
    from dataclasses import replace
    return replace(p, onset_model=replace(p.onset_model, **changes) if changes else None)


def test_fine_tuning_starts_from_the_base_model(soundcheck_preset, fixture_kit):
    """Fine-tuned on two short grooves, the network keeps the base's weights on the band features
    (it moves from them, a little); trained from scratch on the same, it has nothing of them."""
    base = load_preset("default")
    grooves = shipped_grooves("model")[::120]
    tuned = train_onset_model(soundcheck_preset, [fixture_kit], grooves, 5.0, start=base)
    scratch = train_onset_model(soundcheck_preset, [fixture_kit], grooves, 5.0)
    assert tuned.provenance["learned_trigger"]["fine_tuned_from"] == "default"
    assert scratch.provenance["learned_trigger"]["fine_tuned_from"].startswith("none")
    B = len(base.onset_model.band_hz) - 1

    def band_weights(model):                  # weights on raw band levels: the scale folded in
        return (model.w1[:B] / model.scale[:B, None]).ravel()

    ref = band_weights(base.onset_model)
    assert np.corrcoef(band_weights(tuned.onset_model), ref)[0, 1] > 0.9
    assert abs(np.corrcoef(band_weights(scratch.onset_model), ref)[0, 1]) < 0.3
    assert not np.allclose(band_weights(tuned.onset_model), ref)        # and it did learn


def test_fine_tuning_every_network_keeps_the_ensemble(soundcheck_preset, fixture_kit):
    """Fine-tuned from the shipped ensemble network by network, the learned trigger is an ensemble
    again: each network starts from its own base network (its band weights are close to that
    one's, not to the others'), and they share one velocity read-out and one threshold per drum."""
    base = load_preset("default")
    grooves = shipped_grooves("model")[::120]
    tuned = train_onset_model(soundcheck_preset, [fixture_kit], grooves, 5.0, start=base, networks=3, epochs=2)
    nets, old = tuned.onset_model.networks, base.onset_model.networks
    assert len(old) >= 3 and len(nets) == 3
    record = tuned.provenance["learned_trigger"]
    assert record["networks"] == 3 and record["epochs"] == [2, 2, 2] and record["fine_tuned_from"] == "default"
    B = len(base.onset_model.band_hz) - 1

    def band_weights(model):
        return (model.w1[:B] / model.scale[:B, None]).ravel()

    for k, net in enumerate(nets):
        similarity = [np.corrcoef(band_weights(net), band_weights(o))[0, 1] for o in old]
        assert int(np.argmax(similarity)) == k and similarity[k] > 0.9, similarity
        np.testing.assert_array_equal(net.vel_w, nets[0].vel_w)
        np.testing.assert_array_equal(net.mean, nets[0].mean)
    assert not np.allclose(nets[0].w1, nets[1].w1)
    assert all(t in np.round(np.arange(0.05, 0.96, 0.05), 2) for t in tuned.onset_model.threshold)
    # one network asked for: the first, as before ensembles were fine-tuned
    single = train_onset_model(soundcheck_preset, [fixture_kit], grooves, 5.0, start=base, epochs=2)
    assert len(single.onset_model.networks) == 1
    np.testing.assert_allclose(band_weights(single.onset_model), band_weights(nets[0]), rtol=1e-6, atol=1e-9)


def test_an_ensembles_threshold_is_the_lowest_near_the_best():
    """On a flat top of the F_0.5 curve an ensemble takes the lowest threshold within
    ENSEMBLE_PLATEAU of the best (its averaged probabilities stay lower on grooves it was not
    fitted on); one network takes the best."""
    from rtdrums.training.onset_training import ENSEMBLE_PLATEAU, THRESHOLDS, lowest_near_best

    f = np.interp(THRESHOLDS, [0.05, 0.5, 0.75, 0.95], [0.3, 0.9 - ENSEMBLE_PLATEAU / 2, 0.9, 0.6])
    assert lowest_near_best(f) == 0.75
    chosen = lowest_near_best(f, ENSEMBLE_PLATEAU)
    assert 0.5 <= chosen < 0.75 and f[list(THRESHOLDS).index(chosen)] >= 0.9 - ENSEMBLE_PLATEAU
    assert f[list(THRESHOLDS).index(chosen) - 1] < 0.9 - ENSEMBLE_PLATEAU


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_time_left_follows_the_work():
    """Steps of unequal work: when each takes time in proportion to its work, the time left is
    exact from the first step on, where a count of steps would be off by far."""
    clock, out = _Clock(), io.StringIO()
    bar = Progress([Stage("many small", 10, 0.1), Stage("one big", 1, 9.0)], stream=out, clock=clock)
    assert bar.seconds_left() is None
    for k in range(10):
        clock.t += 0.1 * 2                   # 2 s per unit of work
        bar()
        assert bar.seconds_left() == pytest.approx(2 * (10 - 0.1 * (k + 1)))
    clock.t += 18
    bar()
    assert bar.fraction == 1 and bar.seconds_left() == 0
    bar()                                    # a step too many is harmless
    lines = out.getvalue().splitlines()
    assert lines[0] == "training:   0% many small" and "\r" not in out.getvalue()
    assert lines[-1] == "training:  10% one big, about 18 s left"


def test_progress_on_a_terminal_updates_one_line():
    clock, out = _Clock(), _Tty()
    bar = Progress([Stage("rendering", 3, 1.0)], title="training", stream=out, clock=clock)
    for _ in range(3):
        clock.t += 1
        bar()
    bar.close()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 5 and text.endswith("\r\033[K")
    assert "training:  67% rendering, about 1 s left" in text


def test_cli_train_soundcheck_fine_tunes_the_base_trigger(soundcheck, tmp_path):
    """`rtdrums train --hits` on a soundcheck (one model groove here; the default is 48 x 5 s):
    the detector keeps the base's settings, the learned trigger's networks are fine-tuned from the base's,
    and the progress goes to stderr as plain lines (not a terminal)."""
    import subprocess

    groove = shipped_grooves("model")[0]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "mine"
    r = subprocess.run([sys.executable, "-m", "rtdrums.cli", "train", "--hits", str(soundcheck), "--out", str(out),
                        "--model-grooves", str(groove), "--tune-grooves", str(groove)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    p, base = load_preset(out), load_preset("default")
    assert p.onset_model is not None and "trigger_tuning" not in p.provenance
    assert p.provenance["learned_trigger"]["fine_tuned_from"] == "default"
    # every network of the shipped ensemble fine-tuned: the preset keeps the ensemble's averaging
    assert len(p.onset_model.networks) == len(base.onset_model.networks) == FAST.fine_tune_networks
    assert p.provenance["learned_trigger"]["epochs"] == [FAST.fine_tune_epochs] * FAST.fine_tune_networks
    assert "trained on 1 grooves (fine-tuned from 'default')" in r.stdout
    for d, b in zip(p.drums, base.drums):
        assert (d.relative, d.crosstalk, d.lookback_ms) == (b.relative, b.crosstalk, b.lookback_ms)
    progress = [line for line in r.stderr.splitlines() if line.startswith("training:")]
    assert progress[0].startswith("training: ") and "learning templates" in progress[0] and "\r" not in r.stderr
    assert "--tune-grooves are not used" in r.stderr
