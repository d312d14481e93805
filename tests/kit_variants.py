"""A kit the fixture preset was never trained on, made from the fixture kit: every sample detuned
(resampled) and EQ'd, so that templates learnt on the original no longer fit it exactly."""

from __future__ import annotations

import numpy as np
from scipy import signal

from rtdrums.training.kits import ROLES, Kit


def detuned_kit(kit: Kit, ratio: float = 1.25, tilt_hz: float = 2500.0, sample_rate: int = 48000) -> Kit:
    """kit's samples played `ratio` times faster (pitch up, shorter) and through a first-order
    shelf that halves everything above tilt_hz: a differently tuned, darker kit."""
    b, a = signal.butter(1, tilt_hz, fs=sample_rate)
    layers = {}
    for role in ROLES:
        sounds = []
        for audio, _ in sorted(kit.hits(role, sample_rate), key=lambda hv: hv[1]):
            n = max(1, int(len(audio) / ratio))
            y = np.interp(np.arange(n) * ratio, np.arange(len(audio)), audio)
            y = 0.5 * y + 0.5 * signal.lfilter(b, a, y)
            sounds.append(y.astype(np.float32))
        if sounds:
            layers[role] = sounds
    return Kit.from_audio(f"{kit.name} (detuned x{ratio:g})", layers, sample_rate, kit.license)
