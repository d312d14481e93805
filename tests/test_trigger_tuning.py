"""Trigger tuning: the detector replay equals the live engine, its scoring equals mir_eval, and
tuning on rendered training grooves of the fixture kit finds settings at least as good as the
untuned ones there."""

from __future__ import annotations

from dataclasses import replace

import mir_eval
import numpy as np
import pytest

from rtdrums.training import trigger_tuning as tt
from rtdrums.engine import Engine
from rtdrums.tables import detector_state, trigger_settings
from rtdrums.offline import run_blocks
from rtdrums.training.render import render_groove, shipped_grooves

SR = 48000


@pytest.fixture(scope="module")
def untuned(fixture_kit):
    """The fixture kit trained without trigger tuning (the settings every drum starts from)."""
    from rtdrums.training.train import hits_from_kit, train

    hits, provenance = hits_from_kit(fixture_kit.path, SR)
    return train(hits, provenance, "untuned")


@pytest.fixture(scope="module")
def takes(untuned, fixture_kit):
    """Two training grooves, 12 s each, rendered with the fixture kit and recorded."""
    engine = Engine(untuned)
    return engine, tt.render_takes(engine, [fixture_kit], shipped_grooves("train")[:2], seconds=12.0)


def test_greedy_matching_counts_as_mir_eval():
    rng = np.random.default_rng(3)
    window = int(0.05 * SR)
    for _ in range(200):
        ref = np.sort(rng.integers(0, 5 * SR, rng.integers(0, 40)))
        est = np.sort(rng.integers(0, 5 * SR, rng.integers(0, 40)))
        lat = np.zeros(len(ref), np.int64)
        got = tt._match(ref, est, est, window, lat)
        want = len(mir_eval.util.match_events(ref / SR, est / SR, window / SR))
        assert got == want


def test_replay_gives_the_engines_events(untuned, fixture_kit):
    """The detector replayed on recorded activations fires exactly as the streaming engine."""
    engine = Engine(untuned, max_block=untuned.stft.hop)
    r = render_groove(shipped_grooves("validation")[1], fixture_kit, SR, max_seconds=8.0)
    _, live = run_blocks(engine, r.mix, engine.settings.hop)
    take = tt.record(engine, r.mix, [r.samples(d) for d in engine.drum_names])
    tables = engine.tables._replace(**trigger_settings(untuned, engine.settings))
    events = np.zeros(4096, live.dtype)
    n = tt._replay(take.act, take.h, tables, engine.params, *detector_state(tables), events)
    assert len(live) > 30
    for field in ("onset", "emitted", "drum", "note", "velocity"):
        np.testing.assert_array_equal(events[:n][field], live[field], err_msg=field)


def test_score_matches_mir_eval_on_the_engines_triggers(takes, untuned, fixture_kit):
    engine, recorded = takes
    scores = tt.score(engine, recorded)
    hits = {d: [0, 0, 0] for d in range(3)}
    for groove in shipped_grooves("train")[:2]:
        r = render_groove(groove, fixture_kit, SR, max_seconds=12.0)
        engine.reset()
        _, ev = run_blocks(engine, r.mix, engine.settings.hop)
        for d, name in enumerate(engine.drum_names):
            est = ev["onset"][ev["drum"] == d] / SR
            ref = r.times(name)
            hits[d][0] += len(mir_eval.util.match_events(ref, est, 0.05))
            hits[d][1] += len(ref)
            hits[d][2] += len(est)
    for d, (m, n_ref, n_est) in hits.items():
        p, rc = m / n_est, m / n_ref
        assert scores[d].f == pytest.approx(2 * p * rc / (p + rc), abs=1e-12)
        assert 0 < scores[d].latency_ms < 30


def test_tuning_improves_the_objective_it_tunes(takes, untuned):
    engine, recorded = takes
    before = tt.score(engine, recorded)
    tuned, after = tt.tune_triggers(untuned, recorded, engine)
    assert after == tt.score(engine, recorded, tuned)               # the reported scores are real
    for d, (b, a) in enumerate(zip(before, after)):
        assert a.objective >= b.objective - tt.TIE        # near-ties keep the settings it started from
        drum = tuned.drums[d]
        assert drum.relative in tt.GRID["relative"] and drum.crosstalk in tt.GRID["crosstalk"]
        assert drum.lookback_ms in tt.GRID["lookback_ms"]
    assert sum(a.objective for a in after) > sum(b.objective for b in before)
    # only trigger settings change
    assert np.array_equal(tuned.W, untuned.W) and tuned.stft == untuned.stft
    assert [d.reference for d in tuned.drums] == [d.reference for d in untuned.drums]
    assert [replace(d, relative=0, crosstalk=0, lookback_ms=0) for d in tuned.drums] == \
           [replace(d, relative=0, crosstalk=0, lookback_ms=0) for d in untuned.drums]


def test_train_records_the_tuning_in_the_provenance(fixture_preset):
    """The shared fixture preset is trained as `rtdrums train --kit` does: tuned on train grooves."""
    record = fixture_preset.provenance["trigger_tuning"]
    assert record["grooves"] == [p.name for p in shipped_grooves("train")]
    assert record["kits"] and set(record["f_measure_50ms"]) == {"kick", "snare", "hihat"}
    assert all(0 < f <= 1 for f in record["f_measure_50ms"].values())


def test_the_objective_is_that_of_the_kit_fitted_worst(takes):
    """Takes labelled as two kits: the objective follows the worse one, the pooled F both."""
    engine, recorded = takes
    one = [tt.score(engine, [t])[1] for t in recorded]
    two = tt.score(engine, [replace(t, kit=k) for t, k in zip(recorded, ("a", "b"))])[1]
    assert two.worst_f_beta == pytest.approx(min(s.worst_f_beta for s in one))
    assert min(s.f for s in one) <= two.f <= max(s.f for s in one)


def test_margins_can_be_left_alone(takes, untuned):
    """A preset for several kits keeps its cross-talk margins (train.tune with several kits)."""
    engine, recorded = takes
    tuned, _ = tt.tune_triggers(untuned, recorded, engine, margins=False)
    assert [d.crosstalk for d in tuned.drums] == [d.crosstalk for d in untuned.drums]
    assert tt.grid_size(3, margins=False) * len(tt.GRID["crosstalk"]) == tt.grid_size(3)
