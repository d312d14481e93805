"""Setting the learned trigger's thresholds of a trained preset (rtdrums.training.learned_thresholds)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.evaluation.metrics import match
from rtdrums.offline import separate
from rtdrums.preset import load_preset, resolve_preset
from rtdrums.training.learned_thresholds import main, with_both, with_thresholds

SR = 48000


def _triggers_and_matches(preset, render) -> np.ndarray:
    """(drums, 2): triggers and true onsets matched within 50 ms, per drum."""
    ev = separate(Engine(preset, SR, max_block=128), render.mix, 128).events
    out = []
    for d, name in enumerate(preset.drum_names):
        est = np.sort(ev[ev["drum"] == d]["onset"]) / SR
        out.append((len(est), len(match(np.sort(render.samples(name)) / SR, est))))
    return np.array(out)


def test_lower_thresholds_trigger_more_and_recall_at_least_as_much(rendered_groove):
    shipped = with_both(load_preset("default"), [])         # the learned trigger alone
    strict = _triggers_and_matches(with_thresholds(shipped, (0.9, 0.9, 0.9)), rendered_groove)
    loose = _triggers_and_matches(with_thresholds(shipped, (0.2, 0.2, 0.2)), rendered_groove)
    assert np.all(loose >= strict)
    assert loose[:, 0].sum() > strict[:, 0].sum()


def test_cli_rewrites_the_thresholds_and_keeps_the_trained_ones(tmp_path, capsys):
    folder = shutil.copytree(resolve_preset("default"), tmp_path / "p")
    shipped = load_preset(folder)          # the trained thresholds: kept from a first rewrite
    trained = shipped.provenance.get("learned_thresholds", {}).get("trained") \
        or list(shipped.onset_model.threshold)
    assert main([str(folder), "0.5,0.4,0.5"]) == 0
    assert main([str(folder), "0.45,0.4,0.5"]) == 0
    p = load_preset(folder)
    assert p.onset_model.threshold == (0.45, 0.4, 0.5)
    assert p.provenance["learned_thresholds"] == {"trained": trained, "set": [0.45, 0.4, 0.5]}
    assert "0.45 / 0.4 / 0.5" in capsys.readouterr().out


def test_cli_sets_the_drums_both_detectors_trigger(tmp_path, capsys):
    folder = shutil.copytree(resolve_preset("default"), tmp_path / "p")
    assert main([str(folder), "0.4,0.4,0.4", "--both", "kick,hihat"]) == 0
    assert [d.detector for d in load_preset(folder).drums] == ["both", None, "both"]
    assert "threshold detector too for kick,hihat" in capsys.readouterr().out
    assert main([str(folder), "0.4,0.4,0.4"]) == 0                     # without --both: the learned trigger alone
    assert [d.detector for d in load_preset(folder).drums] == [None, None, None]
    assert main([str(folder), "0.4,0.4,0.4", "--both", "tom"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such drum" in err and "\n" not in err


@pytest.mark.parametrize("value, words", [("0.5,0.5", "3 thresholds"), ("0.5,1.5,0.5", "between 0 and 1"),
                                          ("half", "comma-separated numbers")])
def test_bad_thresholds_are_a_one_line_error(tmp_path, capsys, value, words):
    folder = shutil.copytree(resolve_preset("default"), tmp_path / "p")
    assert main([str(folder), value]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_a_preset_without_a_learned_trigger_is_refused(tmp_path, capsys):
    from dataclasses import replace

    from rtdrums.preset import save_preset

    folder = save_preset(replace(load_preset("default"), onset_model=None), tmp_path / "p")
    assert main([str(folder), "0.5,0.5,0.5"]) == 2
    assert "no learned trigger" in capsys.readouterr().err
