"""General MIDI soundfont drum presets as Hydrogen kits, and kits that only train the trigger.

The soundfont tests render with fluidsynth from FluidR3_GM (Debian's fluid-soundfont-gm, MIT);
they skip when either is missing. The trigger-kit tests use copies of the fixture kit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtdrums.errors import UserError
from rtdrums.training.kits import first_within, load_kit
from rtdrums.preset import load_preset
from rtdrums.training.render import render_groove
from rtdrums.training.rooms import varied
from rtdrums.training.soundfont_kits import (DrumPreset, drum_presets, fluidsynth, kit_folders, kit_presets,
                                    main, render_strokes, write_kit)
from rtdrums.training.train import hits_from_kit, learn_templates, model_kit_order

FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
KIT = Path(__file__).parent / "fixtures" / "kit"
GROOVES = Path(__file__).parent.parent / "rtdrums" / "data" / "grooves"
needs_font = pytest.mark.skipif(not FONT.is_file() or shutil.which("fluidsynth") is None,
                                reason="needs fluidsynth and FluidR3_GM.sf2 "
                                       "(apt-get install fluidsynth fluid-soundfont-gm)")


@needs_font
def test_drum_presets_of_fluidr3():
    """Bank 128 of FluidR3: Standard plays all 47 GM percussion notes; one kit per family by
    default; the orchestra kit (timpani on the hat and tom notes) and copies are left out."""
    presets = drum_presets(FONT)
    std = next(p for p in presets if p.program == 0)
    assert std.name == "Standard" and sorted(std.notes) == list(range(35, 82))
    assert [p.name for p in kit_presets(presets)] == ["Standard", "Room", "Power", "Electronic",
                                                       "TR-808", "Jazz", "Brush"]
    every = [p.name for p in kit_presets(presets, variants=True)]
    assert "Standard 3" in every and "Orchestra Kit" not in every
    assert "Room 1" not in every            # plays what Standard 1 plays


@needs_font
def test_kit_from_a_preset_loads_renders_and_is_deterministic(tmp_path):
    """A written kit loads with GM roles; louder velocities play louder layers; grooves render
    with kick, snare and hi-hat onsets; writing it again gives the same samples."""
    preset = DrumPreset(0, "Standard", (36, 38, 42, 46, 49), ("",) * 5)
    folder = write_kit(FONT, preset, tmp_path / "std", velocities=(40, 127))
    kit = load_kit(folder)
    assert {i.name: i.role for i in kit.instruments} == {
        "Bass Drum 1": "kick", "Acoustic Snare": "snare", "Closed Hi-Hat": "hihat_closed",
        "Open Hi-Hat": "hihat_open", "Crash Cymbal 1": "cymbal"}
    for inst in kit.instruments:
        soft, loud = (np.abs(kit.sample(inst, v)).max() for v in (0.1, 1.0))
        assert loud > 2 * soft > 0, inst.name
    r = render_groove(GROOVES / "train" / "drummer1_session3_7_dance-disco_120_beat_4-4.mid", kit, 48000,
                      max_seconds=10)
    assert all(len(r.times(d)) > 0 for d in ("kick", "snare", "hihat"))
    again = write_kit(FONT, preset, tmp_path / "again", velocities=(40, 127))
    for f in sorted(folder.glob("*.flac")):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name


@needs_font
def test_a_long_crash_does_not_ring_into_the_next_hit():
    """Two crash strokes in one run: the second starts in silence (all sound off before it), not
    on the first one's tail, which would pass for its onset; both ring alike for seconds."""
    first, second = render_strokes(FONT, 0, [(49, 127), (49, 127)])
    for hit in (first, second):
        onset = first_within(hit, -60.0)
        assert 0 < onset < 480 and not np.any(hit[:32]) and len(hit) > 3 * 48000
    energy = [float(np.sum(np.square(h, dtype=np.float64))) for h in (first, second)]
    assert abs(energy[1] / energy[0] - 1) < 0.1, energy


def test_missing_fluidsynth_and_bad_fonts_are_one_line_errors(tmp_path, monkeypatch, capsys):
    not_sf2 = tmp_path / "x.sf2"
    not_sf2.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    for font in (tmp_path / "missing.sf2", not_sf2):
        with pytest.raises(UserError) as err:
            drum_presets(font)
        assert "\n" not in str(err.value) and str(font) in str(err.value)
    assert main([str(not_sf2), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="apt-get install fluidsynth"):
        fluidsynth()


def test_kit_folders(tmp_path):
    shutil.copytree(KIT, tmp_path / "kits" / "b")
    shutil.copytree(KIT, tmp_path / "kits" / "a")
    (tmp_path / "kits" / "notes").mkdir()
    assert kit_folders(tmp_path / "kits") == [tmp_path / "kits" / "a", tmp_path / "kits" / "b"]
    assert kit_folders(tmp_path / "kits" / "a") == [tmp_path / "kits" / "a"]
    for bad in (tmp_path / "kits" / "notes", tmp_path / "nowhere"):
        with pytest.raises(UserError, match="soundfont_kits"):
            kit_folders(bad)


@pytest.mark.parametrize("share", [1 / 3, 0.5])
def test_model_kit_order_gives_every_kit_dry_and_room_takes(share):
    """A share of the learned trigger's grooves is played by the trigger kits, in pairs, so that
    with rooms 0.5 (every other take varied) every kit gets as many dry as varied takes."""
    kits, triggers = ["A", "B", "C"], ["s", "t"]
    assert model_kit_order(kits, [], 10, share) == kits
    order = model_kit_order(kits, triggers, 240, share)
    assert len(order) == 240 and sum(k in triggers for k in order) == round(240 * share)
    first = {1 / 3: ["A", "A", "B", "B", "s", "s", "C", "C"], 0.5: ["A", "A", "s", "s", "B", "B", "t", "t"]}
    assert order[:8] == first[share]
    for k in kits + triggers:
        takes = [varied(i, 0.5) for i, x in enumerate(order) if x == k]
        assert 2 * sum(takes) == len(takes) > 0, k


def _cli(*args, timeout=900):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.run([sys.executable, "-m", "rtdrums.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_cli_train_with_a_trigger_kit_keeps_its_templates_out(tmp_path):
    """--trigger-kit joins the learned trigger's renders, not the templates nor the threshold
    tuning: the preset has the templates of --kit alone, its detector is tuned on --kit alone, and
    the learned trigger's provenance names both kits."""
    groove = sorted((GROOVES / "train").glob("*.mid"))[0]
    kits = tmp_path / "kits"
    shutil.copytree(KIT, kits / "other")
    xml = kits / "other" / "drumkit.xml"          # a name of its own, to tell it apart in the provenance
    xml.write_text(xml.read_text().replace("<name>rtdrums test kit</name>", "<name>other kit</name>", 1))
    common = ["--kit", KIT, "--tune-grooves", groove, "--model-grooves", groove, groove, groove, groove]
    r = _cli("train", *common, "--full", "--trigger-kit", kits, "--out", tmp_path / "with")
    assert r.returncode == 0, r.stderr
    p = load_preset(tmp_path / "with")
    hits, _ = hits_from_kit(KIT, p.stft.sample_rate)
    own = learn_templates(hits, p.stft)                  # the templates of --kit alone
    assert p.W.shape[1] == sum(W.shape[1] for W in own.values())
    assert [s["kit"] for s in p.provenance["sources"]] == [load_kit(KIT).name]
    tuning = p.provenance["trigger_tuning"]
    assert tuning["kits"] == [load_kit(KIT).name] and "trigger_kits" not in tuning
    assert p.provenance["learned_trigger"]["kits"] == [load_kit(KIT).name, load_kit(kits / "other").name]
    assert "triggers tuned on 1 grooves x 1 kit(s)" in r.stdout and p.onset_model is not None


@pytest.mark.parametrize("args", [["--trigger-kit", "/nonexistent/kits"],
                                  ["--trigger-kit", str(KIT), "--no-tune"],
                                  ["--trigger-kit", str(KIT), "--trigger", "threshold"]])
def test_cli_train_bad_trigger_kits(tmp_path, args, capsys):
    from rtdrums.cli import main as cli_main

    code = cli_main(["train", "--kit", str(KIT), *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out" / "preset.toml").exists()
