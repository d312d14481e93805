"""Rendering grooves with exact ground truth, on the fixture kit and the shipped grooves."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rtdrums.errors import UserError
from rtdrums.training.kits import load_kit
from rtdrums.training.render import (CHOKE_S, DRUMS, GROOVE_NOTES, PEAK, STEMS, load_groove, render_groove,
                            render_hits, shipped_grooves, velocity_gain)

SR = 48000
NS = "http://www.hydrogen-music.org/drumkit"


def _stem(drum):
    return "residual" if drum == "other" else drum


def test_shipped_grooves():
    train, test, val = shipped_grooves("train"), shipped_grooves("test"), shipped_grooves("validation")
    assert len(train) == 8 and len(test) == 8 and len(val) == 4
    assert all(p.suffix == ".mid" and p.name.startswith("drummer") for p in train + test + val)
    assert len({p.name for p in train + test + val}) == 20              # the splits are disjoint
    with pytest.raises(UserError, match="unknown groove split"):
        shipped_grooves("eval")


def test_every_shipped_groove_is_attributed_and_the_model_cuts_are_from_elsewhere():
    from rtdrums.training.render import GROOVE_DIR, SPLITS

    table = (GROOVE_DIR / "ATTRIBUTION.md").read_text()
    files = [f"{split}/{p.name}" for split in SPLITS for p in shipped_grooves(split)]
    assert [f for f in files if f"| {f} |" not in table] == []
    model = shipped_grooves("model")
    windows = [p for p in model if "_from" in p.stem]
    assert len(model) == 240 and len(windows) == 40
    originals = {p.name for split in ("train", "validation", "test") for p in shipped_grooves(split)}
    assert not originals & {p.name.split("_from")[0] + ".mid" for p in model}
    # the windows carry the open hi-hats the grooves' beginnings lack
    opens = sum(note in (46, 26) for p in windows for t, note, _ in load_groove(p) if t < 15.0)
    assert opens >= 40 * 20


def test_load_groove(validation_grooves, tmp_path):
    notes = load_groove(validation_grooves[0])
    assert len(notes) > 100
    times = [t for t, _, _ in notes]
    assert times == sorted(times) and times[0] >= 0
    assert all(1 <= v <= 127 for _, _, v in notes)
    assert {n for _, n, _ in notes} <= set(GROOVE_NOTES)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    with pytest.raises(UserError, match="cannot read MIDI file"):
        load_groove(bad)


def test_stems_sum_exactly_to_mix(rendered_groove):
    r = rendered_groove
    assert r.sample_rate == SR and tuple(r.stems) == STEMS
    assert all(s.dtype == np.float32 and s.shape == r.mix.shape for s in r.stems.values())
    s = r.stems
    assert np.array_equal(r.mix, s["kick"] + s["snare"] + s["hihat"] + s["residual"])
    assert np.max(np.abs(r.mix)) == pytest.approx(PEAK, rel=1e-4) and PEAK < 1.0
    assert all(np.any(r.stems[s]) for s in STEMS)


def test_onsets_list_every_playable_note(rendered_groove, validation_grooves):
    r = rendered_groove
    notes = [n for n in load_groove(validation_grooves[0]) if n[0] < 20.0]
    assert len(r.onsets) == len(notes)
    by_sample = sorted(notes, key=lambda n: (round(n[0] * SR), n[1]))
    assert [o.note for o in r.onsets] == [n for _, n, _ in by_sample]
    assert {o.drum for o in r.onsets} == set(DRUMS)
    assert {o.articulation for o in r.onsets if o.drum == "hihat"} == {"closed", "open", "pedal"}
    for o in r.onsets:
        sample = round(o.time_s * SR)
        assert o.time_s * SR == pytest.approx(sample, abs=1e-6)
        assert r.stems[_stem(o.drum)][sample] != 0.0
    assert len(r.mix) / SR > r.onsets[-1].time_s + 0.1            # tail after the last hit
    assert np.array_equal(r.samples("kick"), np.round(r.times("kick") * SR))


def test_hit_starts_at_its_onset_sample(fixture_kit, groove_file):
    r = render_groove(groove_file([(0.5, 36, 100), (1.0, 38, 127)]), fixture_kit, SR)
    kick, snare = r.stems["kick"], r.stems["snare"]
    k0, s0 = r.samples("kick")[0], r.samples("snare")[0]
    assert (k0, s0) == (24000, 48000)
    assert not np.any(kick[:k0]) and kick[k0] != 0 and not np.any(snare[:s0]) and snare[s0] != 0
    expected = fixture_kit.sample("Kick", 100 / 127, SR) * velocity_gain(100)
    scale = kick[k0 + np.argmax(np.abs(expected))] / expected[np.argmax(np.abs(expected))]
    np.testing.assert_allclose(kick[k0:k0 + len(expected)], expected * scale, atol=1e-6)
    assert not np.any(r.stems["hihat"]) and not np.any(r.stems["residual"])


def test_open_hat_is_choked_by_the_next_closed_hat(fixture_kit, groove_file):
    kit = fixture_kit
    r = render_groove(groove_file([(0.1, 46, 110), (0.3, 42, 30), (0.9, 36, 127)]), kit, SR)
    kick = kit.sample("Kick", 1.0, SR) * velocity_gain(127)
    g = np.max(np.abs(r.stems["kick"])) / np.max(np.abs(kick))          # the render's one gain
    open_hat = kit.sample("Open HH", 110 / 127, SR) * velocity_gain(110) * g
    closed = kit.sample("Closed HH", 30 / 127, SR) * velocity_gain(30) * g
    o, at, fade = int(0.1 * SR), int(0.3 * SR), int(round(CHOKE_S * SR))
    assert len(open_hat) > at - o + 10 * fade                           # it would ring on
    h = r.stems["hihat"]
    np.testing.assert_allclose(h[o:at], open_hat[:at - o], atol=1e-6)  # rings until the hat closes
    np.testing.assert_allclose(h[at + fade:at + len(closed)], closed[fade:], atol=1e-6)  # then gone
    assert not np.any(h[at + len(closed):])
    fading = h[at:at + fade] - closed[:fade]
    assert np.all(np.abs(fading) <= np.abs(open_hat[at - o:at - o + fade]) + 1e-6)


def test_velocity_raises_level(fixture_kit, groove_file):
    velocities = [20, 60, 100, 127]
    for note, stem in [(36, "kick"), (38, "snare"), (42, "hihat"), (46, "hihat"), (47, "residual")]:
        hits = [(i * 1.0, note, v) for i, v in enumerate(velocities)]
        r = render_groove(groove_file(hits), fixture_kit, SR)
        peaks = [np.max(np.abs(r.stems[stem][i * SR:(i + 1) * SR])) for i in range(len(velocities))]
        assert peaks == sorted(peaks) and len(set(peaks)) == len(peaks), (note, peaks)
    same_layer = render_groove(groove_file([(0.0, 38, 110), (1.0, 38, 120)]), fixture_kit, SR)
    a, b = (np.max(np.abs(same_layer.stems["snare"][i * SR:(i + 1) * SR])) for i in (0, 1))
    assert b / a == pytest.approx(velocity_gain(120) / velocity_gain(110), rel=1e-4)


def _drop_instruments(folder, names):
    ET.register_namespace("", NS)
    tree = ET.parse(folder / "drumkit.xml")
    ilist = tree.getroot().find(f"{{{NS}}}instrumentList")
    for inst in list(ilist):
        if inst.findtext(f"{{{NS}}}name") in names:
            ilist.remove(inst)
    tree.write(folder / "drumkit.xml", encoding="utf-8", xml_declaration=True)
    return load_kit(folder)


def test_missing_pedal_hat_falls_back_to_closed_and_missing_tom_is_skipped(kit_copy, groove_file):
    kit = _drop_instruments(kit_copy(), {"Pedal HH", "Tom Mid"})
    r = render_groove(groove_file([(0.1, 44, 100), (0.5, 45, 100), (0.9, 36, 90)]), kit, SR)
    assert [(o.drum, o.note, o.articulation) for o in r.onsets] == [
        ("hihat", 44, "closed"), ("kick", 36, "kick")]
    assert not np.any(r.stems["residual"])
    expected = kit.sample("Closed HH", 100 / 127, SR)
    start = r.samples("hihat")[0]
    corr = np.corrcoef(r.stems["hihat"][start:start + len(expected)], expected)[0, 1]
    assert corr > 0.9999


def test_kit_with_nothing_to_play_is_a_user_error(kit_copy, groove_file):
    kit = _drop_instruments(kit_copy(), {"Kick"})
    with pytest.raises(UserError, match="no instrument for any note") as err:
        render_groove(groove_file([(0.1, 36, 100)]), kit, SR)
    assert "\n" not in str(err.value)


def test_max_seconds_seed_and_sample_rate(fixture_kit, validation_grooves):
    groove = validation_grooves[-1]
    a = render_groove(groove, fixture_kit, SR, max_seconds=4.0, seed=1)
    b = render_groove(groove, fixture_kit, SR, max_seconds=4.0, seed=1)
    assert np.array_equal(a.mix, b.mix) and a.onsets == b.onsets
    assert a.onsets[-1].time_s < 4.0 and len(a.mix) < 5.0 * SR
    c = render_groove(groove, fixture_kit, 44100, max_seconds=4.0)
    assert len(c.onsets) == len(a.onsets)
    assert np.max(np.abs(c.times() - a.times())) < 1.0 / 44100


def test_onsets_carry_each_samples_attack(lead_in_kit, groove_file):
    """attack_s: from the onset (where the sample starts, -60 dB lead trimmed) to its first value
    within ATTACK_DB of its peak."""
    r = render_groove(groove_file([(0.1, 38, 20), (0.5, 38, 120)]), lead_in_kit, SR)
    assert [round(o.attack_s * SR) for o in r.onsets] == [240, 0]
    start = r.samples("snare")[0]
    level = np.abs(r.stems["snare"][start:start + 480])
    assert level[:240].max() < 0.01 * level[240]


def test_render_hits_are_isolated(fixture_kit):
    r = render_hits(fixture_kit, "snare", SR, velocities=(40, 80, 127), gap_s=0.1)
    assert [o.velocity for o in r.onsets] == [40, 80, 127]
    assert {(o.drum, o.note) for o in r.onsets} == {("snare", 38)}
    starts = r.samples()
    assert not np.any(r.stems["snare"][:starts[0]])
    for s0, s1 in zip(starts, starts[1:]):
        assert not np.any(r.stems["snare"][s1 - int(0.1 * SR):s1])      # silence between hits
    assert not np.any(r.mix - r.stems["snare"])
    with pytest.raises(UserError):
        render_hits(fixture_kit, "other", SR)
