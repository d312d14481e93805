"""The kick and snare error diagnosis (rtdrums.evaluation.drum_errors) on real renders of the
fixture kit with the shipped default preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtdrums.evaluation import drum_errors as de
from rtdrums.evaluation.run import evaluate_kit
from rtdrums.preset import load_preset
from conftest import FIXTURE_KIT


@pytest.fixture(scope="module")
def diagnosed(validation_grooves):
    preset = load_preset("default")
    return preset, de.diagnose_kit(FIXTURE_KIT, preset, validation_grooves[:1], seconds=10.0)


def test_the_learned_engine_scores_as_rtdrums_eval(diagnosed, validation_grooves):
    preset, (hits, triggers, scores) = diagnosed
    results, _ = evaluate_kit(FIXTURE_KIT, preset, validation_grooves[:1], seconds=10.0, methods=())
    for d in ("kick", "snare", "hihat"):
        ours, eval_ = scores["learned"][d], results["methods"]["rtdrums"]["drums"][d]
        for key in ("f_50ms", "p_50ms", "r_50ms", "false_by_cause", "missed_by_cause", "recall_by_velocity"):
            assert ours[key] == eval_[key], (d, key)


def test_every_hit_and_note_on_is_accounted_for(diagnosed):
    _, (hits, triggers, scores) = diagnosed
    for d in de.DRUMS:
        s, hs, ts = scores["learned"][d], [h for h in hits if h.drum == d], [t for t in triggers if t.drum == d]
        assert len(hs) == s["ref"] > 5 and len(ts) == s["est"]
        assert sum(h.found for h in hs) == s["matched_50ms"] == sum(t.matched for t in ts)
        assert sum(h.found_threshold for h in hs) == scores["threshold"][d]["matched_50ms"]
        assert sum(h.found_adapt for h in hs) == scores["adapt"][d]["matched_50ms"]
        assert [h.miss_cause is None for h in hs] == [h.found for h in hs]
        false = {c: n for c, n in s["false_by_cause"].items() if n}
        assert false == {c: sum(t.cause == c for t in ts) for c in false}
    for h in hits:        # the shares split all activation: the drum, the other drums, toms, cymbals
        parts = (h.share, h.share_other_drums, h.share_tom, h.share_cymbal)
        assert all(0 <= p <= 1 for p in parts) and sum(parts) == pytest.approx(1, abs=3e-3)
        assert 0 <= h.prob <= 1
    # on a kit its templates were trained on, the shipped trigger is sure of the hits it finds
    assert np.median([h.prob for h in hits if h.found]) > 0.5


def test_the_threshold_detector_is_the_preset_without_its_network():
    preset = load_preset("default")
    v = de.variants(preset)
    assert v["threshold"].onset_model is None and v["learned"].onset_model is preset.onset_model
    assert v["adapt"].adapt.enabled and not v["learned"].adapt.enabled
    assert np.array_equal(v["threshold"].W, preset.W) and v["threshold"].drums == preset.drums


def test_the_command_writes_tables_and_every_hit(validation_grooves, tmp_path, capsys):
    out = tmp_path / "errors.json"
    assert de.main(["--kit", str(FIXTURE_KIT), "--grooves", str(validation_grooves[0]), "--seconds", "5",
                    "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| kit | learned |" in text and "| kit | threshold |" in text and "| kit | kick | found |" in text
    data = json.loads(out.read_text())
    assert {h["drum"] for h in data["hits"]} == {"kick", "snare"}
    assert set(data["scores"]["kit"]) == {"learned", "adapt", "threshold"}


def test_a_wrong_kit_folder_is_a_one_line_error(tmp_path, capsys):
    assert de.main(["--kit", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "drumkit.xml" in err
