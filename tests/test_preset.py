"""Presets on disk: a save/load round trip, and a one-line UserError for everything wrong.

A preset folder holds preset.toml (settings) and templates.npz (W). Each broken variant here is
written by hand from a good preset (trained on the fixture kit) and must be refused by
load_preset with a UserError whose message is a single line; a pickled object array in
templates.npz must be refused without ever being unpickled.
"""

from __future__ import annotations

import os
import shutil
import tomllib

import numpy as np
import pytest
import tomli_w

from rtdrums.errors import UserError
from rtdrums.preset import Preset, articulations, load_preset, save_preset


def test_round_trip(fixture_preset, tmp_path):
    folder = save_preset(fixture_preset, tmp_path / "p")
    assert sorted(os.listdir(folder)) == ["preset.toml", "templates.npz"]    # no .part left over
    p = load_preset(folder)
    assert isinstance(p, Preset)
    np.testing.assert_array_equal(p.W, fixture_preset.W.astype(np.float32).astype(np.float64))
    for field in ("name", "stft", "drums", "residual_labels", "solver", "trigger", "mask_exponent",
                  "residual_reference", "description", "provenance"):
        assert getattr(p, field) == getattr(fixture_preset, field), field
    # saving what was loaded gives the same files
    again = save_preset(p, tmp_path / "q")
    assert (again / "preset.toml").read_text() == (folder / "preset.toml").read_text()
    with np.load(again / "templates.npz") as a, np.load(folder / "templates.npz") as b:
        assert np.array_equal(a["W"], b["W"]) and a["W"].dtype == np.float32


def test_a_drums_own_scan_survives_the_round_trip(fixture_preset, tmp_path):
    assert "scan_ms" not in (save_preset(fixture_preset, tmp_path / "p") / "preset.toml").read_text().split("[[drums]]")[1]
    p = load_preset(save_preset(fixture_preset.with_drum("snare", scan_ms=0.0), tmp_path / "q"))
    assert [d.scan_ms for d in p.drums] == [None, 0.0, None] and p.trigger == fixture_preset.trigger


def test_articulations_of_the_default_preset():
    """Groups are the drums then the residual; articulations are runs of one label and note."""
    a = articulations(load_preset("default"))
    # kick 10, snare 15, hi-hat 10 closed + 5 open + 5 pedal, residual 10 tom + 10 cymbal
    assert a["group_start"].tolist() == [0, 10, 25, 45, 65]
    assert a["art_start"].tolist() == [0, 10, 25, 35, 40, 45, 55, 65]
    assert a["group_art"].tolist() == [0, 1, 2, 5, 7]


def test_settings_file_is_readable_toml(fixture_preset, tmp_path):
    folder = save_preset(fixture_preset, tmp_path / "p")
    cfg = tomllib.loads((folder / "preset.toml").read_text())
    assert cfg["format"] == "rtdrums-preset" and cfg["version"] == 1
    assert [d["name"] for d in cfg["drums"]] == ["kick", "snare", "hihat"]
    assert cfg["stft"]["sample_rate"] == 48000


def test_load_by_path_string(fixture_preset_dir):
    assert load_preset(str(fixture_preset_dir)).name == "calibrated-kit"


# -- broken presets ----------------------------------------------------------------------------

@pytest.fixture
def broken(fixture_preset_dir, tmp_path):
    """Copy the good preset; edit(cfg) -> cfg or W(W) -> W; return the folder."""
    def make(edit_cfg=None, edit_W=None, name="bad"):
        folder = shutil.copytree(fixture_preset_dir, tmp_path / name)
        if edit_cfg:
            cfg = tomllib.loads((folder / "preset.toml").read_text())
            cfg = edit_cfg(cfg) or cfg
            (folder / "preset.toml").write_text(tomli_w.dumps(cfg))
        if edit_W:
            with np.load(folder / "templates.npz") as z:
                arrays = dict(z)
            np.savez(folder / "templates.npz", **{**arrays, "W": edit_W(arrays["W"])})
        return folder
    return make


def _refused(folder, *words):
    with pytest.raises(UserError) as err:
        load_preset(folder)
    msg = str(err.value)
    assert msg and "\n" not in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


def test_missing_folder(tmp_path):
    _refused(tmp_path / "nowhere", "no preset")


def test_folder_without_settings(tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(tmp_path / "empty", "preset.toml")


def test_corrupt_toml(broken):
    folder = broken()
    (folder / "preset.toml").write_text('format = "rtdrums-preset"\nversion = 1\n[stft\nn_fft = 2048\n')
    _refused(folder, "corrupt")


def test_binary_garbage_toml(broken):
    folder = broken()
    (folder / "preset.toml").write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    _refused(folder)


def test_wrong_format(broken):
    _refused(broken(lambda c: {**c, "format": "something-else"}), "format")


def test_wrong_version(broken):
    _refused(broken(lambda c: {**c, "version": 2}), "version")


def test_missing_section(broken):
    def drop(c):
        del c["stft"]
    _refused(broken(drop), "stft")


def test_unknown_setting(broken):
    def typo(c):
        c["drums"][0]["sensitivty"] = 2.0
    _refused(broken(typo), "unknown setting sensitivty", "[drums]")


def test_unknown_trigger_setting_is_named(broken):
    def stale(c):
        c["trigger"]["flux_gate"] = 0.0
    _refused(broken(stale, name="stale"), "unknown setting flux_gate", "[trigger]")


def test_bad_stft_geometry(broken):
    def geometry(c):
        c["stft"]["n_fft"] = 1000
    _refused(broken(geometry), "n_fft")


def test_wrong_template_shape(broken):
    _refused(broken(edit_W=lambda W: W[:-7]), "shape")


def test_wrong_template_rank(broken):
    _refused(broken(edit_W=lambda W: W[:, :, None]), "shape")


def test_too_few_template_columns(broken):
    _refused(broken(edit_W=lambda W: W[:, :5]), "templates")


def test_residual_count_mismatch(broken):
    _refused(broken(edit_W=lambda W: np.concatenate([W, W[:, :1]], axis=1)), "residual")


@pytest.mark.parametrize("index, value, word", [
    ((10, 2), -1e-3, "negative"), ((3, 0), np.nan, "nan"), ((3, 0), np.inf, "infinite"),
    ((slice(None), 1), 0.0, "zero")])
def test_bad_template_values(broken, index, value, word):
    def spoil(W):
        W = W.copy()
        W[index] = value
        return W
    _refused(broken(edit_W=spoil), word)


def test_missing_templates_file(broken):
    folder = broken()
    (folder / "templates.npz").unlink()
    _refused(folder, "templates.npz")


def test_templates_without_W(broken):
    folder = broken()
    np.savez(folder / "templates.npz", V=np.ones((3, 3)))
    _refused(folder, "templates")


def test_templates_not_an_npz(broken):
    folder = broken()
    (folder / "templates.npz").write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    _refused(folder, "templates")


def test_truncated_templates(broken):
    """A templates.npz cut short (an interrupted copy, a full disk) is a corrupt preset."""
    folder = broken()
    data = (folder / "templates.npz").read_bytes()
    (folder / "templates.npz").write_bytes(data[:len(data) // 2])
    _refused(folder, "templates")


def test_bit_flipped_templates(broken):
    folder = broken()
    data = bytearray((folder / "templates.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "templates.npz").write_bytes(bytes(data))
    _refused(folder, "templates")


def test_templates_random_bytes(broken):
    folder = broken()
    (folder / "templates.npz").write_bytes(os.urandom(4096))
    _refused(folder, "templates")


class _Trap:
    """Unpickling this creates a marker file: proof that pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_array_is_refused_never_unpickled(broken, tmp_path):
    folder = broken()
    marker = tmp_path / "unpickled"
    W = np.empty((1025, 19), dtype=object)
    W[:] = 0.0
    W[0, 0] = _Trap(marker)
    np.savez(folder / "templates.npz", W=W)          # allow_pickle defaults to True for saving
    assert not marker.exists()
    _refused(folder, "templates")
    assert not marker.exists(), "templates.npz was unpickled"


@pytest.mark.parametrize("notes", [[200], [-1], [], "abc", [36.5, "x"]])
def test_bad_notes(broken, notes):
    def edit(c):
        c["drums"][0]["notes"] = notes
    _refused(broken(edit))


def test_note_count_must_match_templates(broken):
    def edit(c):
        c["drums"][0]["notes"] = c["drums"][0]["notes"] + [36]
    _refused(broken(edit))


@pytest.mark.parametrize("method", ["newton", "", "KL"])
def test_bad_solver_method(broken, method):
    def edit(c):
        c["solver"]["method"] = method
    _refused(broken(edit), "method")


@pytest.mark.parametrize("section, key, value", [
    ("solver", "iterations", 0),
    ("solver", "warm_decay", 1.5),
    ("trigger", "jump", 0.5),
    ("trigger", "velocity_gamma", -1.0),
    ("mask", "exponent", 0.0),
])
def test_bad_numbers(broken, section, key, value):
    def edit(c):
        c[section][key] = value
    _refused(broken(edit))


@pytest.mark.parametrize("key, value", [("sensitivity", 0.0), ("reference", -1.0),
                                        ("relative", 1.5), ("leak", [0.1]), ("scan_ms", -2.7),
                                        ("scan_ms", float("nan")), ("scan_ms", "fast")])
def test_bad_drum_settings(broken, key, value):
    def edit(c):
        c["drums"][1][key] = value
    _refused(broken(edit), "snare")


def test_duplicate_or_reserved_drum_names(broken):
    def dup(c):
        c["drums"][1]["name"] = "kick"
    _refused(broken(dup, name="dup"), "unique")

    def reserved(c):
        c["drums"][2]["name"] = "residual"
    _refused(broken(reserved, name="reserved"), "residual")


def test_save_into_unwritable_place_is_a_user_error(fixture_preset, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UserError) as err:
        save_preset(fixture_preset, blocker / "preset")
    assert "\n" not in str(err.value)
