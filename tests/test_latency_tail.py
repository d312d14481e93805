"""The latency-tail diagnosis (rtdrums.evaluation.latency_tail) on real renders of the fixture kit
with the shipped default preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.evaluation import latency_tail as lt
from rtdrums.preset import load_preset
from rtdrums.training.kits import load_kit
from rtdrums.training.render import PEAK, hit_sounds, render_groove
from conftest import FIXTURE_KIT

SR = 48000


def test_hit_sounds_add_up_to_the_render(fixture_kit, validation_grooves, rendered_groove):
    sounds = hit_sounds(validation_grooves[0], fixture_kit, SR, max_seconds=20.0)
    assert len(sounds) == len(rendered_groove.onsets)
    acc = np.zeros(len(rendered_groove.mix))
    for o, audio in zip(rendered_groove.onsets, sounds):
        s = int(round(o.time_s * SR))
        acc[s:s + len(audio)] += audio
    acc *= PEAK / np.max(np.abs(acc))
    np.testing.assert_allclose(acc, rendered_groove.mix, atol=1e-5)


def test_the_attack_of_a_hit_that_rises_out_of_noise(lead_in_kit, groove_file):
    soft, loud = hit_sounds(groove_file([(0.1, 38, 20), (0.5, 38, 120)]), lead_in_kit, SR)
    assert lt.attack_samples(soft, SR) == 240           # 5 ms of noise at -44 dB re its peak
    assert lt.attack_samples(loud, SR) == 0
    assert lt.attack_samples(soft, SR, attack_db=-50.0) == 0


@pytest.mark.parametrize("block", [128, 96])
def test_each_latency_splits_into_the_sound_and_the_trigger(validation_grooves, block):
    preset = load_preset("default")
    rules = {}
    notes, agree = lt.diagnose_kit(FIXTURE_KIT, preset, validation_grooves[:2], seconds=10.0, block=block,
                                   rules=rules)
    assert agree["events"] > 20 and agree["replayed"] == agree["events"]
    for d in lt.DRUMS:                                   # the replayed rule scores what the engine did
        mine = [n.latency_ms for n in notes if n.drum == d]
        assert rules["threshold"][d]["counts"][2] == len(mine)
        np.testing.assert_allclose(sorted(rules["threshold"][d]["latency"]), sorted(mine), atol=1e-9)
    assert {n.drum for n in notes} == {"kick", "snare", "hihat"}
    hop_ms = 128 / SR * 1000
    thr = lt.thresholds(Engine(preset, SR))
    for n in notes:
        assert 0 < n.grid_ms <= hop_ms + 1e-9
        assert n.unavoidable_ms >= n.grid_ms
        assert 0 <= n.block_ms < block / SR * 1000
        assert n.latency_ms == pytest.approx(n.unavoidable_ms + n.own_frames * hop_ms + n.block_ms)
        d = lt.DRUMS.index(n.drum)
        assert n.probs[-1] > thr[d]                      # the engine decided where the replay crosses
        fa = len(n.probs) - 1 - n.own_frames             # index of the attack frame in probs
        held = np.array(n.probs[max(fa, 0):-1])
        if n.cause == "early":
            assert n.latency_ms <= n.block_ms
            continue
        if n.cause == "sound":
            assert n.own_frames <= 0
        elif n.cause == "threshold":
            assert held.max() >= lt.RISE - 1e-3 and held.max() <= thr[d] + 1e-3
        elif n.cause == "features":
            assert held.max() < lt.RISE + 1e-3
        else:
            assert n.cause == "retrigger" and n.previous_trigger_ms is not None
    s = lt.summary(notes)
    assert sum(s[d]["n"] for d in s) == len(notes)
    assert all(sum(v["late_by_cause"].values()) == v["late"] for v in s.values())


def test_the_command_reports_a_table_and_every_note(validation_grooves, tmp_path, capsys):
    out = tmp_path / "notes.json"
    assert lt.main(["--kit", str(FIXTURE_KIT), "--grooves", str(validation_grooves[0]), "--seconds", "6",
                    "--json", str(out), "--pair", "0.25"]) == 0
    table = capsys.readouterr().out
    assert "| kit | kick |" in table and "| kit | hihat |" in table
    assert "| kit | threshold |" in table and "| pooled | pair 0.25 |" in table
    data = json.loads(out.read_text())
    r = render_groove(validation_grooves[0], load_kit(FIXTURE_KIT), SR, max_seconds=6)
    assert 0 < len(data["notes"]) <= len([o for o in r.onsets if o.drum in lt.DRUMS])


def test_a_wrong_kit_folder_is_a_one_line_error(tmp_path, capsys):
    assert lt.main(["--kit", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "drumkit.xml" in err and "\n" not in err
