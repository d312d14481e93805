"""A soundcheck's training within its budget: renders that stop where the learned trigger's takes
stop, templates from the first quarter second of a ringing stroke only, the networks fitted two at
a time with the same result, and a progress plan that has as many steps as training takes
(docs/training-speed.md)."""

from __future__ import annotations

import numpy as np
import pytest

from rtdrums.dsp.onset_model import default_band_hz
from rtdrums.dsp.stft import spectrogram
from rtdrums.engine import Engine
from rtdrums.preset import load_preset
from rtdrums.training import onset_training
from rtdrums.training.onset_training import TAIL_S, _record, _standardise, fit_onset_model
from rtdrums.training.render import render_groove, shipped_grooves
from rtdrums.training.train import (FAST, HIT_SECONDS, SILENCE_DB, hit_frames, hits_from_folder, kit_from_hits,
                                    train, training_plan)
from test_training_speed import soundcheck, soundcheck_preset  # noqa: F401  (fixtures)


def test_a_render_ends_where_asked_and_is_the_whole_render_up_to_there(soundcheck):  # noqa: F811
    hits, _ = hits_from_folder(soundcheck, 48000)
    kit = kit_from_hits(hits, "soundcheck", 48000)      # its loudest strokes ring to their take's end
    groove = shipped_grooves("model")[0]
    whole = render_groove(groove, kit, 48000, max_seconds=3.0)
    assert len(whole.mix) > 3.2 * 48000
    cut = render_groove(groove, kit, 48000, max_seconds=3.0, end_s=3.0)
    assert len(cut.mix) == 3 * 48000 and cut.onsets == whole.onsets
    np.testing.assert_array_equal(cut.mix, whole.mix[:len(cut.mix)])
    for stem in whole.stems:
        np.testing.assert_array_equal(cut.stems[stem], whole.stems[stem][:len(cut.mix)])


def test_fast_takes_stop_a_tail_after_their_last_note(soundcheck, soundcheck_preset):  # noqa: F811
    """A soundcheck's loudest stroke rings to the end of its take, and a render that plays it goes
    on as long: the FAST schedule's takes stop TAIL_S after the last note, whatever the kit."""
    hits, _ = hits_from_folder(soundcheck, 48000)
    kit = kit_from_hits(hits, "soundcheck", 48000)
    grooves = shipped_grooves("model")[:2]
    assert FAST.cut_takes
    engine = Engine(soundcheck_preset, max_block=128)
    whole = [t.stop - t.start for t in _record(engine, [kit], grooves, 2.0, default_band_hz(), None)[2]]
    take_s = 2.0 + TAIL_S / 5
    limit = round(take_s * 48000) // 128
    X, labels, takes = _record(engine, [kit], grooves, 2.0, default_band_hz(), None, take_s=take_s)
    assert min(whole) > limit
    assert [t.stop - t.start for t in takes] == [limit] * 2 and len(X) == len(labels) == 2 * limit


def test_a_ringing_strokes_frames_are_its_first_quarter_second(soundcheck):  # noqa: F811
    """hit_frames looks at a stroke's first HIT_SECONDS only (its silence judged against its
    loudest frame there): the frames are those of the whole stroke's spectrogram."""
    settings = load_preset("default").stft
    hits, _ = hits_from_folder(soundcheck, 48000)
    loud = max(hits["hihat_open"], key=lambda h: len(h[0]))[0]         # the last stroke, ringing out
    assert len(loud) > 1.0 * 48000
    V = spectrogram(np.concatenate([loud, np.zeros(settings.n_fft, np.float32)]), settings)
    first = V[:, :int(HIT_SECONDS * 48000 / settings.hop)]
    energy = first.sum(axis=0)
    expected = first[:, energy > V.sum(axis=0).max() * 10 ** (SILENCE_DB / 20)]
    np.testing.assert_array_equal(hit_frames(loud, settings, True), expected)


@pytest.fixture(scope="module")
def features(soundcheck_preset, fixture_kit):  # noqa: F811
    engine = Engine(soundcheck_preset, max_block=128)
    X, labels, takes = _record(engine, [fixture_kit], shipped_grooves("model")[:2], 3.0, default_band_hz(), None)
    mean, scale = _standardise(X, takes)
    return engine, X, labels, takes, mean, scale


def test_networks_fitted_two_at_a_time_are_those_fitted_one_by_one(features, monkeypatch):
    base = load_preset("default")
    models, calls = [], []
    for workers in (1, 2):
        monkeypatch.setattr(onset_training, "FIT_WORKERS", workers)
        steps = []
        model, how = fit_onset_model(*features, default_band_hz(), start=base, networks=3, epochs=1,
                                     progress=lambda: steps.append(1))
        models.append(model)
        calls.append(len(steps))
        assert how["networks"] == 3
    assert calls == [3, 3]                                  # one step per network
    for a, b in zip(models[0].networks, models[1].networks):
        np.testing.assert_array_equal(a.w1, b.w1)
        np.testing.assert_array_equal(a.w2, b.w2)
    assert models[0].threshold == models[1].threshold
    np.testing.assert_array_equal(models[0].vel_w, models[1].vel_w)


def test_the_progress_plan_has_the_steps_training_takes(soundcheck):  # noqa: F811
    """train() on the FAST schedule calls progress exactly as often as training_plan has steps,
    the learned trigger's fit one step per network: the bar ends at 100 %, not before."""
    base = load_preset("default")
    hits, prov = hits_from_folder(soundcheck, 48000)
    kits = [kit_from_hits(hits, "soundcheck", 48000)]
    grooves = shipped_grooves("model")[:2]
    plan = training_plan([hits], kits, None, True, grooves, FAST)
    fit = next(s for s in plan if s.name == "fitting the learned trigger")
    assert fit.steps == FAST.fine_tune_networks == len(base.onset_model.networks)
    steps = []
    train([hits], prov, "p", settings=base.stft, base=base, tune_kits=kits, learned=True, model_grooves=grooves,
          schedule=FAST, progress=lambda: steps.append(1))
    assert len(steps) == sum(s.steps for s in plan)
