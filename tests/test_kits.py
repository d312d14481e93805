"""Hydrogen kit loading on the real fixture kit (and edited copies of it)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile as sf

from rtdrums.errors import UserError
from rtdrums.training.kits import Instrument, Layer, infer_role, load_kit

NS = "http://www.hydrogen-music.org/drumkit"
EXPECTED_ROLES = {"Kick": "kick", "Snare Rock": "snare", "Closed HH": "hihat_closed",
                  "Pedal HH": "hihat_pedal", "Open HH": "hihat_open", "Tom Mid": "tom",
                  "Crash": "cymbal"}


def test_fixture_kit_instruments_roles_and_layers(fixture_kit):
    kit = fixture_kit
    assert kit.name == "rtdrums test kit" and "GPL" in kit.license
    assert {i.name: i.role for i in kit.instruments} == EXPECTED_ROLES
    kick = kit.instrument("Kick")
    assert kick.gm_note == 36 and len(kick.layers) == 3 and kick.mute_group == -1
    assert kit.instrument("Open HH").mute_group == 1
    assert [ly.path.name for ly in kick.layers] == ["bd_01.flac", "bd_03.flac", "bd_04.flac"]
    assert kick.layers[0].min == 0.0 and kick.layers[-1].max == 1.0
    assert all(ly.path.is_file() for i in kit.instruments for ly in i.layers)
    assert kit.skipped == ()


@pytest.mark.parametrize("velocity, expected", [(0.0, 0), (0.1, 0), (0.5, 1), (0.9, 2), (1.0, 2)])
def test_velocity_chooses_layer(fixture_kit, velocity, expected):
    kick = fixture_kit.instrument("Kick")
    assert kick.layer_for(velocity) is kick.layers[expected]


def test_layer_gaps_take_nearest_and_overlaps_are_seeded(tmp_path):
    a, b = (Layer(0.0, 0.4, 1.0, tmp_path / "a"), Layer(0.3, 1.0, 1.0, tmp_path / "b"))
    c = Layer(0.6, 1.0, 1.0, tmp_path / "c")
    gap = Instrument("x", "other", None, 1.0, -1, (a, c))
    assert gap.layer_for(0.45) is a and gap.layer_for(0.55) is c
    overlap = Instrument("x", "other", None, 1.0, -1, (a, b))
    assert overlap.layer_for(0.35) is a
    rng = np.random.default_rng(0)
    assert {overlap.layer_for(0.35, rng).path.name for _ in range(32)} == {"a", "b"}


def test_sample_applies_gains_resamples_and_starts_at_onset(fixture_kit):
    kit = fixture_kit
    snare = kit.instrument("Snare Rock")
    layer = snare.layer_for(1.0)
    raw = kit.layer_audio(layer, 44100)
    assert raw is kit.layer_audio(layer, 44100)                      # cached
    hit = kit.sample(snare, 1.0, sample_rate=44100)
    assert hit.dtype == np.float32 and hit.ndim == 1
    np.testing.assert_allclose(hit, raw * layer.gain * snare.gain, rtol=1e-6)
    assert abs(hit[0]) >= 1e-3 * np.max(np.abs(hit)) * 0.999        # leading silence trimmed
    src, sr = sf.read(layer.path, dtype="float32")
    assert sr == 44100 and len(raw) <= len(src)
    n48 = len(kit.layer_audio(layer, 48000))
    assert abs(n48 - len(raw) * 48000 / 44100) < 0.002 * 48000      # resampled length
    assert kit.sample("Snare Rock", 1.0, 44100).shape == hit.shape   # by name too


def test_hits_lists_every_layer_of_a_role(fixture_kit):
    hits = fixture_kit.hits("kick", sample_rate=48000)
    assert len(hits) == 3
    assert [round(v, 3) for _, v in hits] == [0.167, 0.5, 0.833]
    assert all(a.dtype == np.float32 and a.size > 0 for a, _ in hits)
    peaks = [np.max(np.abs(a)) for a, _ in hits]
    assert peaks == sorted(peaks)                                     # soft to hard
    assert len(fixture_kit.hits("hihat_open", 48000)) == 2
    assert fixture_kit.hits("other", 48000) == []
    with pytest.raises(UserError):
        fixture_kit.hits("cowbell", 48000)


@pytest.mark.parametrize("name, note, files, role", [
    ('Kick (Tama Superstar 22")', 35, (), "kick"), ("BassDrum", None, (), "kick"),
    ("c3 - bass drum 1", None, (), "kick"), ("VariBreaks Snare 1", None, (), "snare"),
    ("Snare 2 Rimshot (Pearl)", 48, (), "snare"), ("Rim Click", 37, (), "snare"),
    ("Stick", None, (), "snare"), ("Stick", 39, (), "other"),
    ("Hi-Hat Closed (Paiste)", 42, (), "hihat_closed"), ("Closed HH 2", None, (), "hihat_closed"),
    ("Hat Op Dirty", None, (), "hihat_open"), ("Side OHH", None, (), "hihat_open"),
    ("Hi-Hat Semiopen", 81, (), "hihat_open"), ("VariBreaks Hat 1 Pd", None, (), "hihat_pedal"),
    ("g#3 - hi-hat pedal", None, (), "hihat_pedal"), ("tomhi2", None, (), "tom"),
    ('Ride (Custom, Zagrebin 22")', 56, (), "cymbal"), ("crash16inch", None, (), "cymbal"),
    ("ride-cup", None, (), "cymbal"), ("Cowbell", None, (), "other"),
    ("Hand Clap", None, (), "other"),
    ("Tambourine Pedal", 80, (), "other"), ("Zap 1", None, (), "other"),
    ("17", 45, (), "tom"), ("17", 51, (), "cymbal"), ("17", 44, (), "hihat_pedal"),
    ("redo super opaco", None, ("snare-opaque-2mics.flac",), "snare"),
])
def test_infer_role(name, note, files, role):
    assert infer_role(name, note, files) == role


def _edit_xml(folder, edit):
    ET.register_namespace("", NS)
    tree = ET.parse(folder / "drumkit.xml")
    edit(tree.getroot())
    tree.write(folder / "drumkit.xml", encoding="utf-8", xml_declaration=True)


def test_old_formats_layers_in_instrument_and_filename_only(kit_copy):
    folder = kit_copy()
    xml = (folder / "drumkit.xml").read_text()
    xml = xml.replace(f' xmlns="{NS}"', "").replace("license>", "licence>")
    xml = re.sub(r"<instrumentComponent>\s*<component_id>0</component_id>\s*<gain>1</gain>",
                 "", xml)
    xml = xml.replace("</instrumentComponent>", "")
    (folder / "drumkit.xml").write_text(xml)
    kit = load_kit(folder)
    assert "GPL" in kit.license
    assert {i.name: (i.role, len(i.layers)) for i in kit.instruments}["Snare Rock"] == ("snare", 3)
    oldest = re.sub(r"<layer>\s*<filename>([^<]+)</filename>.*?</layer>\s*",
                    r"<filename>\1</filename>", xml, flags=re.S)
    (folder / "drumkit.xml").write_text(oldest)
    kit = load_kit(folder)
    assert len(kit.instruments) == 7 and all(len(i.layers) == 1 for i in kit.instruments)
    only = kit.instrument("Kick").layers[0]
    assert (only.min, only.max, only.path.name) == (0.0, 1.0, "bd_01.flac")


def test_component_gain_and_stereo_any_rate(kit_copy):
    folder = kit_copy()
    mono, sr = sf.read(folder / "sd_08.flac", dtype="float32")
    sf.write(folder / "stereo.wav", np.stack([mono, 0.5 * mono], axis=1), 22050, subtype="FLOAT")

    def edit(root):
        comp = root.find(f".//{{{NS}}}instrumentComponent")
        comp.find(f"{{{NS}}}gain").text = "0.5"
        for ly in comp.findall(f"{{{NS}}}layer"):
            ly.find(f"{{{NS}}}filename").text = "stereo.wav"
    _edit_xml(folder, edit)
    kit = load_kit(folder)
    kick = kit.instrument("Kick")
    assert kick.layers[0].gain == pytest.approx(0.5 * 3.0)            # component x layer gain
    audio = kit.layer_audio(kick.layers[0], 22050)
    first = int(np.argmax(np.abs(mono) >= 1e-3 * np.max(np.abs(mono))))
    np.testing.assert_allclose(audio[:1000], 0.75 * mono[first:first + 1000], atol=1e-6)


def test_missing_sample_files_are_skipped_and_noted(kit_copy):
    folder = kit_copy()
    (folder / "hh_p.flac").unlink()
    kit = load_kit(folder)
    assert "Pedal HH" not in [i.name for i in kit.instruments]
    assert any("hh_p.flac" in s for s in kit.skipped)


def _assert_one_line_user_error(folder, match):
    with pytest.raises(UserError, match=match) as err:
        load_kit(folder)
    assert "\n" not in str(err.value) and str(err.value).strip()


def test_bad_kits_raise_one_line_user_errors(tmp_path, kit_copy):
    _assert_one_line_user_error(tmp_path / "nope", "not found")
    (tmp_path / "empty").mkdir()
    _assert_one_line_user_error(tmp_path / "empty", "no drumkit.xml")
    broken = kit_copy("broken")
    (broken / "drumkit.xml").write_text((broken / "drumkit.xml").read_text()[:500])
    _assert_one_line_user_error(broken, "not valid XML")
    other = kit_copy("other")
    (other / "drumkit.xml").write_text("<song><name>x</name></song>")
    _assert_one_line_user_error(other, "not a Hydrogen drum kit")
    nosamples = kit_copy("nosamples")
    for f in nosamples.glob("*.flac"):
        f.unlink()
    _assert_one_line_user_error(nosamples, "no instrument")
    corrupt = kit_copy("corrupt")
    (corrupt / "bd_01.flac").write_bytes(b"not audio\n" * 100)
    _assert_one_line_user_error(corrupt, "cannot read sample .*bd_01.flac")
