"""Shared fixtures: the tiny test kit, the shipped validation grooves, one rendered groove.

fixture_kit        the kit in tests/fixtures/kit (7 instruments of Millo_MultiLayered3, GPL-2)
validation_grooves the GMD validation-split MIDI files shipped in rtdrums/data/grooves/validation
rendered_groove    the first 20 s of the first validation groove (a baiao, 95 bpm: kick, snare,
                   cross-stick, closed/open/pedal hi-hat, toms), rendered with fixture_kit at
                   48 kHz; mix == sum of stems, onsets exact (see rtdrums.training.render)
groove_file        factory: write [(time_s, note, velocity), ...] as a MIDI file, return its path
kit_copy           factory: copy the fixture kit to a temporary folder, return its path
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rtdrums.training.kits import Kit, load_kit

# JACK server fixtures for the live-host tests; loaded here, before any test module imports it,
# so that pytest rewrites its asserts
pytest_plugins = ["jackrig"]

from rtdrums.training.render import Render, render_groove, shipped_grooves

FIXTURE_KIT = Path(__file__).parent / "fixtures" / "kit"


@pytest.fixture(scope="session")
def fixture_kit() -> Kit:
    return load_kit(FIXTURE_KIT)


@pytest.fixture(scope="session")
def validation_grooves() -> list[Path]:
    return shipped_grooves("validation")


@pytest.fixture(scope="session")
def rendered_groove(fixture_kit, validation_grooves) -> Render:
    return render_groove(validation_grooves[0], fixture_kit, sample_rate=48000, max_seconds=20.0)


def write_groove(notes, path: Path) -> Path:
    """Write notes (time_s, note, velocity) as a type-0 MIDI file at 120 bpm; return the path."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=480)        # 960 ticks per second
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = sorted([(round(t * 960), 1, n, v) for t, n, v in notes]
                    + [(round(t * 960) + 48, 0, n, 0) for t, n, v in notes])
    now = 0
    for tick, _, note, vel in events:
        track.append(mido.Message("note_on", channel=9, note=note, velocity=vel, time=tick - now))
        now = tick
    mid.save(path)
    return path


@pytest.fixture
def groove_file(tmp_path):
    """Factory: write_groove(notes) into tmp_path/name; returns the path."""
    return lambda notes, name="groove.mid": write_groove(notes, tmp_path / name)


@pytest.fixture
def lead_in_kit():
    """A kit of one snare, 48 kHz: a soft layer that rises out of 240 samples (5 ms) of noise at
    -50 dB before its attack, and a loud layer without one; both decay from a first value at
    their peak."""
    burst = (np.exp(-np.arange(4800) / 400) * (-1.0) ** np.arange(4800)).astype(np.float32)
    noise = np.full(240, 10 ** (-50 / 20)) * (-1.0) ** np.arange(240)
    soft = np.concatenate([noise, 0.5 * burst]).astype(np.float32)
    return Kit.from_audio("lead-in", {"snare": [soft, burst]}, 48000)


@pytest.fixture
def kit_copy(tmp_path):
    """Copy the fixture kit to a fresh folder (edit its drumkit.xml freely); return the folder."""
    def copy(name="kit"):
        return Path(shutil.copytree(FIXTURE_KIT, tmp_path / name))

    return copy


def _one_blas_thread():
    """Batch NMF runs many small BLAS products: on a busy 2-core machine threads only thrash."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                       # pragma: no cover - threadpoolctl comes with the test deps
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@pytest.fixture(scope="session")
def fixture_preset():
    """The fixture kit's calibrated preset, as `rtdrums eval --calibrate --full` trains it: every
    hit of the kit at 48 kHz, settings from the default preset, the threshold detector tuned on the
    shipped training grooves and the learned trigger trained from scratch on the model grooves,
    rendered with the kit (as `rtdrums train --kit --full` does). The floors of the trigger tests
    are this long training's; the fast one (the default of `train --kit`) falls below some of them
    on this kit (docs/training-speed.md)."""
    from rtdrums.evaluation.protocol import calibrated
    from rtdrums.preset import load_preset

    with _one_blas_thread():
        return calibrated(FIXTURE_KIT, 48000, base=load_preset("default"), full=True)


@pytest.fixture(scope="session")
def fixture_preset_dir(fixture_preset, tmp_path_factory):
    """fixture_preset saved as a preset folder (preset.toml + templates.npz)."""
    from rtdrums.preset import save_preset

    return save_preset(fixture_preset, tmp_path_factory.mktemp("presets") / "fixture")


TRAINED_PRESET_GROUP = "trained-preset"


def pytest_collection_modifyitems(config, items):
    """`make test` runs two pytest-xdist workers (--dist loadgroup). The tests that need the
    fixture kit's trained preset (minutes of training, held per worker) form one group, put first
    so one worker trains it at once while the other runs the rest."""
    for item in items:
        if "fixture_preset" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group(TRAINED_PRESET_GROUP))
    items.sort(key=lambda item: "fixture_preset" not in item.fixturenames)
