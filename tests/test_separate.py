"""`rtdrums separate` on rendered grooves, and its refusals of bad input.

Success: a mono 48 kHz float WAV and a stereo 44.1 kHz FLAC; the stems (float WAV, the input's
rate and length, stem latency removed) sum to the input; triggers.csv and triggers.mid hold the
engine's events. Failure: exit code non-zero, exactly one line on stderr, no traceback, and no
stem or trigger file left in the output folder.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from rtdrums.audio import resample, to_mono
from rtdrums.engine import Engine
from rtdrums.events import CSV_HEADER, read_csv, read_midi_notes
from rtdrums.offline import separate
from rtdrums.training.render import render_groove

RTDRUMS = Path(sys.executable).parent / "rtdrums"
OUTPUTS = ["hihat.wav", "kick.wav", "residual.wav", "snare.wav", "triggers.csv", "triggers.mid"]


def _cli(*args, preexec_fn=None):
    return subprocess.run([str(RTDRUMS), "separate", *map(str, args)], capture_output=True, text=True,
                          timeout=120, preexec_fn=preexec_fn)


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(capsys):
    """`rtdrums separate ...` in this process (rtdrums.cli.main): the same code path, faster."""
    from rtdrums.cli import main

    def call(*args):
        capsys.readouterr()
        code = main(["separate", *map(str, args)])
        out, err = capsys.readouterr()
        return _Result(code, out, err)
    return call


def _assert_one_line_failure(r):
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and lines[0].startswith("rtdrums separate: error:"), r.stderr


def _assert_nothing_written(out: Path):
    if out.exists():
        left = sorted(p.name for p in out.iterdir())
        assert left == [], left


@pytest.fixture(scope="module")
def short_render(fixture_kit, validation_grooves):
    """8 s of the hip-hop validation groove at 48 kHz."""
    hiphop = next(p for p in validation_grooves if "hiphop" in p.name)
    return render_groove(hiphop, fixture_kit, sample_rate=48000, max_seconds=8.0)


def _check_outputs(out, x, rate, preset, block):
    assert sorted(os.listdir(out)) == OUTPUTS                  # no staging folder, no .part files
    stems = []
    for name in ("kick", "snare", "hihat", "residual"):
        info = sf.info(out / f"{name}.wav")
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (rate, len(x), 1, "FLOAT")
        stems.append(sf.read(out / f"{name}.wav", dtype="float32")[0].astype(np.float64))
    total = np.sum(stems, axis=0)
    assert np.max(np.abs(total - x)) <= 2e-6 * np.max(np.abs(x))

    # the triggers are exactly the engine's events on the same input and block size
    sep = separate(Engine(preset, rate, max_block=block), x, block)
    assert len(sep.events) > 10
    assert (out / "triggers.csv").read_text().splitlines()[0] == ",".join(CSV_HEADER)
    assert CSV_HEADER == ["onset_s", "emitted_s", "instrument", "note", "velocity"]
    rows = read_csv(out / "triggers.csv")
    assert len(rows) == len(sep.events)
    names = ("kick", "snare", "hihat")
    for row, e in zip(rows, sep.events):
        assert abs(row["onset_s"] - e["onset"] / rate) < 1e-6
        assert abs(row["emitted_s"] - e["emitted"] / rate) < 1e-6
        assert row["onset_s"] <= row["emitted_s"]
        assert (row["instrument"], row["note"], row["velocity"]) == (names[e["drum"]], e["note"], e["velocity"])

    midi = mido.MidiFile(out / "triggers.mid")
    assert midi.type == 0
    notes = read_midi_notes(out / "triggers.mid")
    assert sorted((n, v) for _, n, v in notes) == sorted((int(e["note"]), int(e["velocity"])) for e in sep.events)
    times = np.array(sorted(t for t, _, _ in notes))
    assert np.max(np.abs(times - np.sort(sep.events["onset"] / rate))) < 1e-3
    on = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in on} == {9}
    return sep


def test_separate_mono_wav(short_render, fixture_preset, fixture_preset_dir, tmp_path):
    wav = tmp_path / "groove.wav"
    sf.write(wav, short_render.mix, 48000, subtype="FLOAT")
    out = tmp_path / "out"
    r = _cli(wav, "--out", out, "--preset", fixture_preset_dir, "--block", 64)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    sep = _check_outputs(out, short_render.mix.astype(np.float64), 48000, fixture_preset, 64)
    for f in OUTPUTS:
        assert str(out / f) in r.stdout                      # the summary names what it wrote
    assert "stem latency 5.3 ms" in r.stdout
    # the triggers find the rendered hits
    for d, name in enumerate(("kick", "snare", "hihat")):
        est = sep.events["onset"][sep.events["drum"] == d] / 48000
        ref = short_render.times(name)
        matched = sum(np.min(np.abs(est - t)) < 0.05 for t in ref) if len(est) else 0
        assert matched >= 0.7 * len(ref), name


def test_separate_stereo_flac_44k(fixture_kit, validation_grooves, fixture_preset, fixture_preset_dir, tmp_path):
    r44 = render_groove(validation_grooves[0], fixture_kit, sample_rate=44100, max_seconds=5.0)
    stereo = np.stack([r44.mix * 0.9, r44.mix * 0.6], axis=1)
    flac = tmp_path / "groove.flac"
    sf.write(flac, stereo, 44100, subtype="PCM_24")
    out = tmp_path / "out"
    r = _cli(flac, "--out", out, "--preset", fixture_preset_dir, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    data, rate = sf.read(flac, dtype="float32", always_2d=True)
    x = to_mono(data).astype(np.float64)                     # what the command separated
    _check_outputs(out, x, 44100, fixture_preset, 128)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_separate_low_rate_file_is_resampled(run, fixture_kit, validation_grooves, fixture_preset_dir,
                                             tmp_path, rate):
    """A file below the preset's range runs at the preset's rate: stems at the file's rate and
    length that sum to the input resampled there and back, and triggers on the kicks (whose band
    the low rate keeps; the snare's and hi-hat's attacks above its Nyquist frequency are gone)."""
    r48 = render_groove(validation_grooves[0], fixture_kit, sample_rate=48000, max_seconds=6.0)
    low = render_groove(validation_grooves[0], fixture_kit, sample_rate=rate, max_seconds=6.0)
    wav = tmp_path / "low.wav"
    sf.write(wav, low.mix, rate, subtype="FLOAT")
    out = tmp_path / "out"
    r = run(wav, "--out", out, "--preset", fixture_preset_dir)
    assert r.returncode == 0, r.stderr
    assert "resampled" in r.stdout
    stems = np.stack([sf.read(out / f"{n}.wav", dtype="float64")[0] for n in ("kick", "snare", "hihat", "residual")], 1)
    assert sf.info(out / "kick.wav").samplerate == rate and len(stems) == len(low.mix)
    round_trip = resample(resample(low.mix, rate, 48000), 48000, rate)[:len(low.mix)]
    assert np.max(np.abs(stems.sum(axis=1) - round_trip)) <= 1e-5 * np.max(np.abs(low.mix))
    events = read_csv(out / "triggers.csv")
    est = np.array([e["onset_s"] for e in events if e["instrument"] == "kick"])
    ref = r48.times("kick")
    matched = sum(np.min(np.abs(est - t)) < 0.05 for t in ref) if len(est) else 0
    assert matched >= 0.8 * len(ref)


def test_rerun_replaces_outputs(run, short_render, fixture_preset_dir, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, short_render.mix[:48000], 48000, subtype="FLOAT")
    out = tmp_path / "out"
    out.mkdir()
    (out / "kick.wav").write_text("stale")
    r = run(wav, "--out", out, "--preset", fixture_preset_dir, "--quiet")
    assert r.returncode == 0, r.stderr
    assert sf.info(out / "kick.wav").frames == 48000


# -- bad input ---------------------------------------------------------------------------------

@pytest.fixture
def good_wav(short_render, tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, short_render.mix[:96000], 48000, subtype="FLOAT")
    return wav


def test_missing_input(fixture_preset_dir, tmp_path):
    out = tmp_path / "out"
    r = _cli(tmp_path / "nope.wav", "--out", out, "--preset", fixture_preset_dir)
    _assert_one_line_failure(r)
    assert "no such file" in r.stderr
    _assert_nothing_written(out)


def test_input_is_a_folder(run, fixture_preset_dir, tmp_path):
    out = tmp_path / "out"
    r = run(tmp_path, "--out", out, "--preset", fixture_preset_dir)
    _assert_one_line_failure(r)
    _assert_nothing_written(out)


def test_empty_file(run, fixture_preset_dir, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    _assert_one_line_failure(run(empty, "--out", out, "--preset", fixture_preset_dir))
    _assert_nothing_written(out)


def _empty_wav(path):
    sf.write(path, np.zeros(0, np.float32), 48000, subtype="FLOAT")


def _text_named_wav(path):
    path.write_text("these are my drum notes, not audio\n" * 20)


def _nan_wav(path):
    sf.write(path, np.full(48000, np.nan, np.float32), 48000, subtype="FLOAT")


@pytest.mark.parametrize("make, word", [(_empty_wav, "empty"),
                                        (_text_named_wav, "not a readable audio file"),
                                        (_nan_wav, "NaN")])
def test_unusable_input_file(run, fixture_preset_dir, tmp_path, make, word):
    bad = tmp_path / "input.wav"
    make(bad)
    out = tmp_path / "out"
    r = run(bad, "--out", out, "--preset", fixture_preset_dir)
    _assert_one_line_failure(r)
    assert word in r.stderr
    _assert_nothing_written(out)


def test_truncated_wav(run, good_wav, fixture_preset_dir, tmp_path):
    """A WAV cut short (a recording that crashed) still separates what it has, or fails cleanly."""
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good_wav.read_bytes()[:50000])
    out = tmp_path / "out"
    r = run(cut, "--out", out, "--preset", fixture_preset_dir, "--quiet")
    if r.returncode == 0:
        assert sorted(os.listdir(out)) == OUTPUTS
        assert sf.info(out / "kick.wav").frames == sf.info(cut).frames
    else:
        _assert_one_line_failure(r)
        _assert_nothing_written(out)


def test_corrupt_preset(run, good_wav, fixture_preset_dir, tmp_path):
    bad = shutil.copytree(fixture_preset_dir, tmp_path / "bad-preset")
    (bad / "preset.toml").write_text("format = [unclosed\n")
    out = tmp_path / "out"
    r = run(good_wav, "--out", out, "--preset", bad)
    _assert_one_line_failure(r)
    assert "preset" in r.stderr
    _assert_nothing_written(out)


def test_unknown_preset_name(run, good_wav, tmp_path):
    out = tmp_path / "out"
    r = run(good_wav, "--out", out, "--preset", "no-such-preset-name")
    _assert_one_line_failure(r)
    _assert_nothing_written(out)


def test_bad_block(run, good_wav, fixture_preset_dir, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_failure(run(good_wav, "--out", out, "--preset", fixture_preset_dir, "--block", 0))
    _assert_nothing_written(out)


def test_unwritable_out_dir(run, good_wav, fixture_preset_dir, tmp_path):
    """As root, chmod does not stop writes: put the output folder under a regular file."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file")
    r = run(good_wav, "--out", blocker / "sub", "--preset", fixture_preset_dir)
    _assert_one_line_failure(r)
    assert blocker.read_text() == "a file"


def test_out_is_a_file(run, good_wav, fixture_preset_dir, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file")
    _assert_one_line_failure(run(good_wav, "--out", blocker, "--preset", fixture_preset_dir))
    assert blocker.read_text() == "a file"


def _limit_file_size():
    # a file may not grow beyond 64 KiB: writes then fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))


def test_file_size_limit_like_a_full_disk(good_wav, fixture_preset_dir, tmp_path):
    """Writing the stems fails midway (RLIMIT_FSIZE: EFBIG, the same failing write() as ENOSPC)."""
    out = tmp_path / "out"
    # a normal run first leaves the compiled engine in numba's cache: a full disk while numba
    # writes its cache is not the case here
    assert _cli(good_wav, "--out", tmp_path / "warm", "--preset", fixture_preset_dir, "--quiet").returncode == 0
    r = _cli(good_wav, "--out", out, "--preset", fixture_preset_dir, "--quiet",
             preexec_fn=_limit_file_size)
    _assert_one_line_failure(r)
    _assert_nothing_written(out)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk(run, good_wav, fixture_preset_dir, tmp_path):
    """A real full disk: a 256 KiB tmpfs, too small for the stems of 2 s of float audio."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "out"
        r = run(good_wav, "--out", out, "--preset", fixture_preset_dir, "--quiet")
        _assert_one_line_failure(r)
        assert "No space left" in r.stderr or "space" in r.stderr
        _assert_nothing_written(out)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
