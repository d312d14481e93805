"""Streaming short-time Fourier analysis and synthesis with low-delay asymmetric windows.

Frame m ends at the newest sample: it covers input samples (t - n_fft, t], t = (m + 1) * hop.
The analysis window rises slowly over most of the frame and falls over the last `taper`
samples only, so a hit already weighs fully in the first frame that is `taper` samples past it,
while the long window still resolves a kick from a floor tom. The synthesis window is nonzero on
the last `synthesis` samples only and makes analysis x synthesis a Hann window of that length,
which overlap-adds to one at the hop: perfect reconstruction with a stem latency of
`synthesis - 1` samples instead of `n_fft - 1` (Mauler and Martin's low-delay scheme).
With synthesis == taper * 2 == n_fft both windows are the usual square-root Hann.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


@dataclass(frozen=True)
class StftSettings:
    """Sample rate and frame geometry (all lengths in samples)."""
    sample_rate: int = 48000
    n_fft: int = 2048          # analysis window length, a power of two
    hop: int = 128             # frame advance: a hit is seen within one hop
    synthesis: int = 256       # synthesis window length: stem latency = synthesis - 1
    taper: int = 128           # falling edge of the analysis window

    def validate(self) -> None:
        """Raise ValueError with a one-line reason if the geometry cannot work."""
        n, h, s, t = self.n_fft, self.hop, self.synthesis, self.taper
        if not 8000 <= self.sample_rate <= 384000:
            raise ValueError(f"sample rate {self.sample_rate} Hz is outside 8000..384000")
        if n < 64 or n & (n - 1):
            raise ValueError(f"n_fft must be a power of two >= 64, got {n}")
        if not (1 <= h <= n // 2):
            raise ValueError(f"hop must be between 1 and n_fft/2 = {n // 2}, got {h}")
        if s % h or not (2 * h <= s <= n):
            raise ValueError(f"synthesis length {s} must be a multiple of the hop {h}, "
                             f"at least 2*hop and at most n_fft")
        if not (1 <= t <= s // 2):
            raise ValueError(f"taper {t} must be between 1 and synthesis/2 = {s // 2}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def stem_latency(self) -> int:
        """Samples by which every stem lags the input."""
        return self.synthesis - 1

    @property
    def bin_freqs(self) -> np.ndarray:
        return np.arange(self.n_bins) * self.sample_rate / self.n_fft

    def rate_range(self) -> tuple[int, int]:
        """Rates templates trained at this rate can serve: from the next common rate below
        (48 -> 44.1 kHz loses only the top 8 % of the band) up to four times the rate. Lower
        rates cut off what the hi-hat's templates and the trigger listen to."""
        return int(self.sample_rate * 0.9), self.sample_rate * 4

    def with_hop(self, hop: int) -> "StftSettings":
        """The same window at another hop: the synthesis length rounded up to a multiple of it
        (at least two hops), the taper no longer than one hop."""
        synthesis = max(2 * hop, -(-self.synthesis // hop) * hop)
        return StftSettings(self.sample_rate, self.n_fft, hop, synthesis, min(self.taper, hop))

    def scaled_to(self, sample_rate: int) -> "StftSettings":
        """The same geometry in time at another rate (lengths scaled by powers of two)."""
        if sample_rate == self.sample_rate:
            return self
        ratio = sample_rate / self.sample_rate
        shift = int(np.round(np.log2(ratio)))
        scale = (lambda v: v << shift) if shift >= 0 else (lambda v: max(1, v >> -shift))
        return StftSettings(sample_rate, scale(self.n_fft), scale(self.hop),
                            scale(self.synthesis), scale(self.taper))


def analysis_window(s: StftSettings) -> np.ndarray:
    """Asymmetric analysis window, normalised to unit sum so spectra do not scale with n_fft."""
    rise = s.n_fft - s.taper
    w = np.empty(s.n_fft)
    w[:rise] = np.sqrt(_periodic_hann(2 * rise)[:rise])
    w[rise:] = np.sqrt(_periodic_hann(2 * s.taper)[s.taper:])
    return w / w.sum()


def synthesis_window(s: StftSettings) -> np.ndarray:
    """Synthesis window such that analysis * synthesis overlap-adds to one at the hop."""
    wa = analysis_window(s)
    target = np.zeros(s.n_fft)
    target[s.n_fft - s.synthesis:] = _periodic_hann(s.synthesis) * (2 * s.hop / s.synthesis)
    ws = np.zeros(s.n_fft)
    nz = target > 0
    ws[nz] = target[nz] / wa[nz]
    return ws


def spectrogram(x: np.ndarray, s: StftSettings) -> np.ndarray:
    """Magnitude spectrogram (n_bins x frames) of the frames the streaming engine sees of x.

    Used for training and for offline (non-causal) reference runs.
    """
    return np.abs(frame_spectra(x, s)).T


def frame_spectra(x: np.ndarray, s: StftSettings, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Complex spectra (frames x n_bins) of the engine's frames start..stop-1 of x.

    Frame m ends after input sample (m + 1) * hop - 1, exactly as in the engine; x is preceded
    and followed by silence. Default stop: the last frame that ends inside x.
    """
    x = np.asarray(x, np.float64)
    stop = len(x) // s.hop if stop is None else stop
    idx = (np.arange(start, stop)[:, None] + 1) * s.hop - s.n_fft + np.arange(s.n_fft)[None, :]
    xp = np.append(x, 0.0)                    # index len(x) stands for every sample outside x
    frames = xp[np.where((idx >= 0) & (idx < len(x)), idx, len(x))] * analysis_window(s)
    return np.fft.rfft(frames, axis=1)
