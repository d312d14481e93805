"""A drum triggered by the learned trigger and the threshold detector both (`detector = "both"`),
on real renders of the fixture kit with the shipped default preset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.offline import separate
from rtdrums.preset import load_preset, save_preset
from rtdrums.training.learned_thresholds import with_both
from rtdrums.training.rooms import vary
from allocations import block_allocations

SR = 48000


@pytest.fixture(scope="module")
def presets():
    p = with_both(load_preset("default"), [])        # the learned trigger alone (the default has both on the kick)
    return {"learned": p, "threshold": replace(p, onset_model=None), "both": p.with_drum("kick", detector="both")}


@pytest.fixture(scope="module")
def room_mix(rendered_groove):
    """The fixture render recorded in a simulated room: the kit and room the preset has not heard."""
    return vary(rendered_groove, 1234).mix


@pytest.fixture(scope="module")
def events(presets, room_mix):
    return {k: separate(Engine(p, SR, max_block=1024), room_mix).events for k, p in presets.items()}


def _keys(ev, drum):
    e = ev[ev["drum"] == drum]
    return {(int(x["onset"]), int(x["decided"]), int(x["velocity"])) for x in e}


def test_the_kick_takes_the_notes_of_either_detector(presets, events):
    learned, threshold, both = (_keys(events[k], 0) for k in ("learned", "threshold", "both"))
    assert both <= learned | threshold
    added, lost = both - learned, learned - both
    assert added and added <= threshold                   # notes the learned trigger alone did not send
    retrig = Engine(presets["both"], SR).tables.m_retrig[0]
    decided = np.array(sorted(d for _, d, _ in both))
    for _, d, _ in lost:                                  # masked by a threshold note just before
        assert np.any((decided < d) & (decided >= d - retrig))
    gaps = np.diff(decided)
    assert np.all(gaps >= min(retrig, Engine(presets["both"], SR).tables.retrig[0]))
    for drum in (1, 2):                                   # the other drums: the learned trigger's notes
        assert _keys(events["both"], drum) == _keys(events["learned"], drum)


def test_chunked_equals_whole_and_a_repeat_after_reset(presets, room_mix, events):
    engine = Engine(presets["both"], SR, max_block=1024)
    chunked = separate(engine, room_mix, block=97).events
    engine.reset()
    again = separate(engine, room_mix, block=128).events
    for ev in (chunked, again):
        assert sorted(_keys(ev, 0)) == sorted(_keys(events["both"], 0))


def test_no_allocation_per_block(presets, room_mix):
    a = block_allocations(Engine(presets["both"], SR, max_block=1024), room_mix[:SR * 4])
    assert a.events > 5
    assert a.nrt_allocs == a.calls * 3 and a.nrt_kept == 0 and a.meminfo_kept == 0


def test_the_setting_survives_a_round_trip_and_a_bad_one_is_named(presets, tmp_path):
    plain = (save_preset(presets["learned"], tmp_path / "a") / "preset.toml").read_text()
    assert "detector" not in plain                        # left out unless set: files stay as they were
    p = load_preset(save_preset(presets["both"], tmp_path / "b"))
    assert [d.detector for d in p.drums] == ["both", None, None]
    with pytest.raises(ValueError, match="drum snare: detector must be one of 'learned', 'both'"):
        presets["learned"].with_drum("snare", detector="threshold").validate()
