"""Validation renders of rtdrums.evaluation.unseen_kits, dry and recorded in simulated rooms, and
its command line on the fixture kit."""
from __future__ import annotations

import re

import numpy as np

from rtdrums.evaluation.unseen_kits import ROOMS_SEED, main, validation_renders
from rtdrums.training.rooms import EVAL_SEED


def test_room_renders_keep_the_ground_truth_and_sound_different(fixture_kit):
    dry = validation_renders(fixture_kit, 3.0)
    rooms = validation_renders(fixture_kit, 3.0, rooms=True)
    again = validation_renders(fixture_kit, 3.0, rooms=True)
    assert len(dry) == len(rooms) > 1 and ROOMS_SEED > EVAL_SEED + len(rooms)
    for d, r, a in zip(dry, rooms, again):
        assert r.onsets == d.onsets
        np.testing.assert_array_equal(r.mix, a.mix)
        np.testing.assert_array_equal(r.mix, r.stems["kick"] + r.stems["snare"] + r.stems["hihat"]
                                      + r.stems["residual"])
        n = min(len(d.mix), len(r.mix))
        assert not np.allclose(r.mix[:n], d.mix[:n], atol=1e-3)
    assert not np.array_equal(rooms[0].mix[:48000], rooms[1].mix[:48000])


def test_command_line_scores_the_default_in_rooms(capsys):
    from conftest import FIXTURE_KIT

    assert main(["default", str(FIXTURE_KIT.parent), "--seconds", "3", "--rooms"]) == 0
    out = capsys.readouterr().out
    pooled = re.search(r"pooled default: F kick / snare / hi-hat ([\d.]+) / ([\d.]+) / ([\d.]+)", out)
    assert pooled and all(0.0 < float(f) <= 1.0 for f in pooled.groups()), out
