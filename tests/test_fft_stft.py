"""The allocation-free FFT kernels and the streaming STFT geometry.

fft:  rfft_into / irfft_into against numpy.fft for powers of two from 4 to 8192; plans refuse
      other lengths.
stft: analysis x synthesis windows overlap-add to exactly one at the hop (default low-latency
      setting, the standard 2048/512 one, and the default scaled to 44.1 and 96 kHz); validate()
      refuses geometry that cannot reconstruct; stem_latency = synthesis - 1; spectrogram()
      frames are the frames the streaming engine analyses (frame m ends at sample (m+1)*hop - 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from rtdrums.dsp import fft
from rtdrums.engine import Engine
from rtdrums.dsp.stft import StftSettings, analysis_window, frame_spectra, spectrogram, synthesis_window

SIZES = [4, 8, 16, 64, 256, 1024, 2048, 4096, 8192]


def _plan_args(plan):
    return plan.bitrev, plan.twiddle, plan.split, plan.work


@pytest.mark.parametrize("n", SIZES)
def test_rfft_into_equals_numpy(n):
    rng = np.random.default_rng(n)
    plan = fft.make_plan(n)
    for x in (rng.standard_normal(n), np.zeros(n), np.eye(1, n, n // 3)[0], np.ones(n)):
        out = np.full(n // 2 + 1, np.nan + 0j)         # every bin must be written
        fft.rfft_into(x, out, *_plan_args(plan))
        ref = np.fft.rfft(x)
        assert np.max(np.abs(out - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))


@pytest.mark.parametrize("n", SIZES)
def test_irfft_into_equals_numpy(n):
    rng = np.random.default_rng(1000 + n)
    plan = fft.make_plan(n)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    # a half spectrum of a real signal: DC and Nyquist are real (numpy ignores their imaginary
    # parts; irfft_into is only ever given spectra of real frames times real masks)
    spec[0], spec[-1] = spec[0].real, spec[-1].real
    out = np.full(n, np.nan)
    fft.irfft_into(spec, out, *_plan_args(plan))
    ref = np.fft.irfft(spec, n)
    assert np.max(np.abs(out - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
    # and the round trip through both kernels gives the signal back
    x = rng.standard_normal(n)
    half = np.zeros(n // 2 + 1, np.complex128)
    back = np.zeros(n)
    fft.rfft_into(x, half, *_plan_args(plan))
    fft.irfft_into(half, back, *_plan_args(plan))
    assert np.max(np.abs(back - x)) <= 1e-12 * np.max(np.abs(x))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6, 12, 100, 1000, 2047, 3072])
def test_make_plan_rejects_non_powers_of_two(n):
    with pytest.raises(ValueError, match="power of two"):
        fft.make_plan(n)


# -- STFT -----------------------------------------------------------------------------------

DEFAULT = StftSettings()
STANDARD = StftSettings(48000, 2048, 512, 2048, 1024)          # symmetric sqrt-Hann, 2048/512
SETTINGS = {
    "default": DEFAULT,
    "standard-2048-512": STANDARD,
    "default@44.1k": DEFAULT.scaled_to(44100),
    "default@96k": DEFAULT.scaled_to(96000),
    "standard@96k": STANDARD.scaled_to(96000),
    "hop-96": StftSettings(48000, 1024, 96, 384, 96),           # hop that does not divide n_fft
    "default-hop-64": DEFAULT.with_hop(64),                      # `rtdrums train --hop 64`
}


def test_with_hop_keeps_the_window_and_fits_synthesis_and_taper():
    assert DEFAULT.with_hop(64) == StftSettings(48000, 2048, 64, 256, 64)
    assert DEFAULT.with_hop(128) == DEFAULT
    assert DEFAULT.with_hop(96) == StftSettings(48000, 2048, 96, 288, 96)
    assert DEFAULT.with_hop(512) == StftSettings(48000, 2048, 512, 1024, 128)


@pytest.mark.parametrize("name", SETTINGS)
def test_windows_overlap_add_to_one(name):
    s = SETTINGS[name]
    s.validate()
    wa, ws = analysis_window(s), synthesis_window(s)
    assert wa.shape == ws.shape == (s.n_fft,)
    assert wa[0] == 0 and np.all(wa[1:] > 0) and np.all(ws >= 0)
    assert abs(wa.sum() - 1.0) < 1e-12                          # unit-sum analysis window
    p = wa * ws
    assert np.all(p[:s.n_fft - s.synthesis] == 0)             # synthesis only on the last samples
    ola = np.array([p[n::s.hop].sum() for n in range(s.hop)])   # sum over all frame shifts
    assert np.max(np.abs(ola - 1.0)) < 1e-12


def test_scaled_settings_keep_the_geometry_in_time():
    assert DEFAULT.scaled_to(48000) is DEFAULT
    s96 = DEFAULT.scaled_to(96000)
    assert (s96.sample_rate, s96.n_fft, s96.hop, s96.synthesis, s96.taper) == (96000, 4096, 256, 512, 256)
    s44 = DEFAULT.scaled_to(44100)
    assert (s44.sample_rate, s44.n_fft, s44.hop, s44.synthesis, s44.taper) == (44100, 2048, 128, 256, 128)
    for s in (s96, s44):
        assert abs(s.hop / s.sample_rate - DEFAULT.hop / DEFAULT.sample_rate) < 0.1 * DEFAULT.hop / 48000


def test_default_is_the_low_latency_setting():
    s = StftSettings()
    assert s.sample_rate == 48000 and s.hop <= 128 and 1024 <= s.n_fft <= 2048


@pytest.mark.parametrize("name", SETTINGS)
def test_stem_latency_is_synthesis_minus_one(name):
    s = SETTINGS[name]
    assert s.stem_latency == s.synthesis - 1
    assert s.n_bins == s.n_fft // 2 + 1
    assert s.bin_freqs[-1] == s.sample_rate / 2


@pytest.mark.parametrize("kwargs, reason", [
    ({"sample_rate": 4000}, "sample rate"),
    ({"sample_rate": 1_000_000}, "sample rate"),
    ({"n_fft": 1000}, "power of two"),
    ({"n_fft": 32, "hop": 8, "synthesis": 16, "taper": 8}, "power of two"),
    ({"hop": 0}, "hop"),
    ({"hop": 1025, "synthesis": 2050}, "hop"),
    ({"synthesis": 200}, "multiple of the hop"),
    ({"synthesis": 128}, "at least 2\\*hop"),
    ({"synthesis": 4096}, "at most n_fft"),
    ({"taper": 0}, "taper"),
    ({"taper": 129}, "taper"),
])
def test_validate_rejects_bad_geometry(kwargs, reason):
    with pytest.raises(ValueError, match=reason) as err:
        StftSettings(**kwargs).validate()
    assert "\n" not in str(err.value)


def test_spectrogram_matches_its_definition():
    s = DEFAULT
    rng = np.random.default_rng(7)
    x = rng.standard_normal(5 * s.n_fft + 77)
    V = spectrogram(x, s)
    assert V.shape == (s.n_bins, len(x) // s.hop)
    padded = np.concatenate([np.zeros(s.n_fft), x])
    wa = analysis_window(s)
    for m in (0, 1, 5, 15, 16, V.shape[1] - 1):
        end = (m + 1) * s.hop - 1                               # newest sample of frame m
        frame = padded[s.n_fft + end + 1 - s.n_fft: s.n_fft + end + 1]
        ref = np.abs(np.fft.rfft(frame * wa))
        np.testing.assert_allclose(V[:, m], ref, rtol=1e-10, atol=1e-14)


def test_frame_spectra_beyond_the_signal_are_silence():
    """Frames past the end of x (the offline baseline's tail) and of an empty x are windowed zeros
    where x is absent."""
    s = DEFAULT
    x = np.random.default_rng(8).standard_normal(3 * s.hop)
    n = (len(x) + s.n_fft) // s.hop
    X = frame_spectra(x, s, 0, n)
    padded = np.concatenate([np.zeros(s.n_fft), x, np.zeros(s.n_fft)])
    for m in (0, 2, 3, n - 1):
        frame = padded[(m + 1) * s.hop: (m + 1) * s.hop + s.n_fft]
        np.testing.assert_allclose(X[m], np.fft.rfft(frame * analysis_window(s)), atol=1e-12)
    assert not np.any(X[n - 1]) and not np.any(frame_spectra(np.zeros(0), s, 0, 3))


def test_spectrogram_frames_are_the_engine_frames(fixture_preset, rendered_groove):
    """After each hop of input the engine's magnitude spectrum is the next spectrogram column."""
    engine = Engine(fixture_preset, 48000, max_block=fixture_preset.stft.hop)
    s = engine.settings
    x = rendered_groove.mix[:48000]
    V = spectrogram(x, s)
    n_frames = 0
    for m in range(V.shape[1]):
        engine.process(x[m * s.hop:(m + 1) * s.hop])
        assert engine.frames_processed == m + 1
        mag = engine.state.mag
        np.testing.assert_allclose(mag, V[:, m], rtol=1e-9, atol=1e-12 * max(1.0, V[:, m].max()))
        n_frames += 1
    assert n_frames == len(x) // s.hop and V[:, -1].max() > 0
