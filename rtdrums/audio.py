"""Reading and writing audio files with errors a user can act on."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import UserError


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples float32 (n, channels), sample_rate) of an audio file; UserError if unusable."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give an audio file (WAV, FLAC, OGG, AIFF)")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise UserError(f"{path}: not a readable audio file ({str(e).splitlines()[0]}); "
                        f"give a WAV, FLAC, OGG or AIFF file") from None
    if data.shape[0] == 0:
        raise UserError(f"{path}: the audio file is empty")
    if not np.all(np.isfinite(data)):
        bad = int(np.sum(~np.isfinite(data)))
        raise UserError(f"{path}: {bad} samples are NaN or infinite; repair or re-export the file")
    return data, int(rate)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Mix channels (n, ch) to mono by their mean, as float32 C-contiguous."""
    data = np.asarray(data, np.float32)
    mono = data if data.ndim == 1 else data.mean(axis=1)
    return np.ascontiguousarray(mono, np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling along the first axis (no-op at equal rates)."""
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out, rate_in).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)


def write_audio(path: str | os.PathLike, data: np.ndarray, rate: int, subtype: str = "FLOAT") -> None:
    """Write audio atomically: to a .part file first, renamed when complete."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    try:
        sf.write(tmp, data, rate, subtype=subtype, format=fmt)
        os.replace(tmp, path)
    except (OSError, sf.LibsndfileError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "strerror", None) or str(e)
        raise UserError(f"cannot write {path}: {reason}; check free space and permissions") from None
