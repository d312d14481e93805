"""Score-informed separation (rtdrums.score_informed) on a groove rendered with the fixture kit:
better stems than the uninformed engine, nonnegative activations confined to the score's
windows, the score's offset recovered, and one-line errors for scores that cannot be used."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from rtdrums.audio import write_audio
from rtdrums.cli import main
from rtdrums.engine import Engine
from rtdrums.errors import UserError
from rtdrums.evaluation.metrics import si_sdr
from rtdrums.offline import separate
from rtdrums.preset import load_preset
from rtdrums import score_informed as si
from rtdrums.training.render import render_groove

SECONDS = 6.0
SHORT = 3.0                  # seconds of the take for the command-line tests
DRUMS = ("kick", "snare", "hihat")


@pytest.fixture(scope="module")
def take(fixture_kit, validation_grooves):
    return render_groove(validation_grooves[0], fixture_kit, sample_rate=48000, max_seconds=SECONDS)


@pytest.fixture(scope="module")
def preset():
    return load_preset("default")


@pytest.fixture(scope="module")
def notes(take, preset, validation_grooves):
    return [n for n in si.read_score(validation_grooves[0], preset) if n.time_s < SECONDS]


@pytest.fixture(scope="module")
def informed(take, preset, notes):
    return si.separate_informed(take.mix, 48000, preset, notes)


def test_informed_stems_beat_the_uninformed_engine(take, preset, informed):
    plain = separate(Engine(preset, 48000), take.mix)
    blind = [si_sdr(take.stems[d], plain.stems[:, i]) for i, d in enumerate(DRUMS)]
    score = [si_sdr(take.stems[d], informed.stems[:, i]) for i, d in enumerate(DRUMS)]
    # kick and snare gain; this kit's quiet hi-hat (about 2 dB either way) is not asserted alone
    assert score[0] > blind[0] + 1.0 and score[1] > blind[1], (blind, score)
    assert np.mean(score) > np.mean(blind), (blind, score)
    # the residual is the rest: the stems add up to the input
    np.testing.assert_allclose(informed.stems.sum(axis=1), take.mix, atol=1e-4)


@pytest.fixture(scope="module")
def informed_take(take, preset, notes):
    return si.separate_informed(take.mix, 48000, preset, notes, templates="take")


@pytest.mark.parametrize("which", ["informed", "informed_take"])
def test_activations_are_nonnegative_and_stay_in_the_windows(preset, which, request, take):
    informed = request.getfixturevalue(which)
    np.testing.assert_allclose(informed.stems.sum(axis=1), take.mix, atol=1e-4)
    H = informed.H
    assert np.all(np.isfinite(H)) and H.min() >= 0.0
    M = si.window_mask(informed.notes, informed.offset_s, preset, informed.settings, H.shape[1], informed.cols)
    drum_rows = np.concatenate(informed.cols[:-1])
    assert np.all(H[drum_rows][~M[drum_rows]] == 0.0)
    assert np.all(H[drum_rows].sum(axis=0)[M[drum_rows].any(axis=0)].max() > 0)
    assert np.all(informed.W >= 0) and np.allclose(informed.W.sum(axis=0), 1.0, atol=1e-4)


def test_templates_learned_from_the_take_match_their_drums(take, preset, notes):
    s = preset.stft
    x = take.mix.astype(np.float64)
    n_frames = (len(x) + s.synthesis) // s.hop + 1
    V = np.abs(si.frame_spectra(x, s, 0, n_frames)).T
    true = {d: np.abs(si.frame_spectra(take.stems[d].astype(np.float64), s, 0, n_frames)).T for d in DRUMS}
    cols = si._group_columns(preset)
    W, new = si.take_templates(V, preset.W, cols, notes, 0.0, s)
    assert np.all(W >= 0) and np.allclose(W.sum(axis=0), 1.0)
    frames = si.note_frames([n.time_s for n in notes], s)
    cos = lambda a, b: a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)
    for d, drum in enumerate(DRUMS):
        assert len(new[d]) == len(si.NOTE_STAGES_S)              # every drum has clean notes here
        onset = W[:, new[d][0]]
        # each drum's onset template looks like its own stem at its notes, more than like the others'
        mine = [cos(onset, true[o][:, frames[[n.drum == d for n in notes]]].mean(axis=1)) for o in DRUMS]
        assert np.argmax(mine) == d and mine[d] > 0.8, (drum, mine)
    # a drum with too few clean notes keeps the preset's templates; the residual always does
    few = [n for n in notes if n.drum != 0] + [n for n in notes if n.drum == 0][:si.MIN_CLEAN_NOTES - 1]
    W2, cols2 = si.take_templates(V, preset.W, cols, few, 0.0, s)
    np.testing.assert_array_equal(W2[:, cols2[0]], preset.W[:, cols[0]])
    np.testing.assert_array_equal(W2[:, cols2[-1]], preset.W[:, cols[-1]])


def test_triggers_follow_the_score_with_measured_velocities(take, notes, informed):
    ev = informed.events
    scored = [n for n in notes if n.drum < 3]
    assert len(ev) == len(scored)
    true = take.velocities()
    for d, drum in enumerate(DRUMS):
        got = ev[ev["drum"] == d]
        ref = take.samples(drum)
        assert len(got) == len(ref)
        assert np.max(np.abs(got["onset"] - ref)) <= 0.006 * 48000          # alignment error
    # loud notes come out louder than soft ones: velocities are measured, not copied
    kick = ev[ev["drum"] == 0]["velocity"]
    assert np.corrcoef(kick, take.velocities("kick"))[0, 1] > 0.5
    assert len(true) >= len(ev)


@pytest.mark.parametrize("shift_ms", [-30.0, 30.0])
def test_offset_is_recovered_with_notes_missing(take, preset, notes, informed, shift_ms):
    kept = [replace(n, time_s=n.time_s + shift_ms / 1000) for i, n in enumerate(notes) if i % 20 != 7]
    res = si.separate_informed(take.mix, 48000, preset, kept, iterations=5)
    assert res.offset_s == pytest.approx(informed.offset_s - shift_ms / 1000, abs=0.003)


def test_stems_of_a_shifted_score_with_notes_missing_stay_close(take, preset, notes, informed):
    kept = [replace(n, time_s=n.time_s + 0.030) for i, n in enumerate(notes) if i % 20 != 7]
    res = si.separate_informed(take.mix, 48000, preset, kept)
    exact = [si_sdr(take.stems[d], informed.stems[:, i]) for i, d in enumerate(DRUMS)]
    shifted = [si_sdr(take.stems[d], res.stems[:, i]) for i, d in enumerate(DRUMS)]
    # measured -1.0 / 0.4 / 1.1 dB below the exact score's (docs/score-informed.md); the bound is 2
    assert all(e - sh < 2.0 for e, sh in zip(exact, shifted)), (exact, shifted)


def test_notes_played_early_or_late_are_moved_to_their_hits(take, preset, notes):
    s = preset.stft
    x = take.mix.astype(np.float64)
    n_frames = (len(x) + s.synthesis) // s.hop + 1
    V = np.abs(si.frame_spectra(x, s, 0, n_frames)).T
    act = si.drum_activations(V, preset.W, si._group_columns(preset))
    rng = np.random.default_rng(3)
    drums = [n for n in notes if n.drum < 3]
    jittered = [replace(n, time_s=n.time_s + rng.choice([-0.012, 0.012])) for n in drums]
    refined = si.refine_notes(jittered, act, s, 0.0)
    err = lambda ns: np.abs(si.note_frames([n.time_s for n in ns], s) - si.note_frames([n.time_s for n in drums], s))
    # 12 ms is 4.5 hops off; the refined notes are back at their hits' frames
    assert np.median(err(jittered)) >= 4 and np.median(err(refined)) <= 1, (err(jittered), err(refined))
    # measured: 64 % back within a frame (docs/score-informed.md), so it is not on by default
    assert np.mean(err(refined) <= 1) > 0.5 and np.mean(err(refined)) < 0.5 * np.mean(err(jittered))
    assert si.refine_notes(drums, act, s, 0.0, radius_s=0.0) == drums


def _score(tmp_path, notes, name="score.mid"):
    from conftest import write_groove
    return write_groove(notes, tmp_path / name)


def test_score_errors(tmp_path, take, preset, notes):
    with pytest.raises(UserError, match="no drum notes"):
        si.read_score(_score(tmp_path, [(0.5, 60, 100), (1.0, 61, 90)]), preset)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    with pytest.raises(UserError, match="cannot read MIDI"):
        si.read_score(bad, preset)
    late = notes + [replace(notes[0], time_s=SECONDS + 3.0)]
    with pytest.raises(UserError, match="1 of .* lie outside the audio"):
        si.separate_informed(take.mix, 48000, preset, late)
    moved = [replace(n, time_s=n.time_s + 0.4) for n in notes if n.time_s < SECONDS - 0.5]
    with pytest.raises(UserError, match="best at an offset of -(39|40|41)\\d ms, beyond --score-tolerance"):
        si.separate_informed(take.mix, 48000, preset, moved, iterations=1)
    rng = np.random.default_rng(1)
    random = [replace(n, time_s=float(t)) for n, t in zip(notes, np.sort(rng.uniform(0, SECONDS - 0.1, len(notes))))]
    with pytest.raises(UserError, match="fits the audio nowhere"):
        si.separate_informed(take.mix, 48000, preset, random, iterations=1)


def _short_take(tmp_path, take, notes):
    wav = tmp_path / "take.wav"
    write_audio(wav, take.mix[:int(SHORT * 48000)], 48000)
    short = [n for n in notes if n.time_s < SHORT - 0.1]
    return wav, _score(tmp_path, [(n.time_s, n.note, n.velocity) for n in short]), short


def test_cli_writes_stems_and_score_triggers(tmp_path, take, notes, capsys):
    wav, score, notes = _short_take(tmp_path, take, notes)
    assert main(["separate", str(wav), "--score", str(score), "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["hihat.wav", "kick.wav", "residual.wav", "snare.wav", "triggers.csv", "triggers.mid"]
    with open(tmp_path / "out" / "triggers.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(n.drum < 3 for n in notes)
    assert main(["separate", str(wav), "--score", str(tmp_path / "missing.mid"), "--out",
                 str(tmp_path / "o2")]) == 1
    assert "cannot read MIDI" in capsys.readouterr().err.strip().splitlines()[-1]


def test_train_from_a_groove_writes_a_preset_of_its_templates(tmp_path, take, notes, capsys):
    wav, score, notes = _short_take(tmp_path, take, notes)
    out = tmp_path / "groove-preset"
    assert main(["train", "--groove", str(wav), "--score", str(score), "--no-tune", "--out", str(out)]) == 0
    p = load_preset(out)
    assert p.drum_names == DRUMS
    labels = {lab for d in p.drums for lab in d.labels}
    assert {"kick", "snare", "hihat_closed"} <= labels
    assert p.W.shape[1] < load_preset("default").W.shape[1]       # only the templates the take used
    assert all(d.reference > 0 for d in p.drums)
    assert p.provenance["groove"]["hits"]["kick"] == sum(n.drum == 0 for n in notes)
    assert main(["train", "--groove", str(wav), "--out", str(tmp_path / "x")]) == 1
    assert "needs both --groove" in capsys.readouterr().err
