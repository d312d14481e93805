"""Allocation-free real FFT for Numba code.

numpy's and rocket-fft's FFTs return new arrays, which would allocate in the audio callback.
These kernels work in place on preallocated buffers: an iterative radix-2 complex FFT of N/2
points, and the standard split that turns it into a real FFT of N points. N is a power of two.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class FFTPlan(NamedTuple):
    """Precomputed tables for a real FFT of n points (n a power of two, >= 4)."""
    n: int
    bitrev: np.ndarray      # (n/2,) int64: bit-reversal permutation of the half-size FFT
    twiddle: np.ndarray     # (n/4,) complex128: exp(-2j pi k / (n/2))
    split: np.ndarray       # (n/2,) complex128: exp(-2j pi k / n), for the real/complex split
    work: np.ndarray        # (n/2,) complex128 scratch


def make_plan(n: int) -> FFTPlan:
    if n < 4 or n & (n - 1):
        raise ValueError(f"FFT length must be a power of two >= 4, got {n}")
    m = n // 2
    bits = m.bit_length() - 1
    idx = np.arange(m)
    rev = np.zeros(m, np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    twiddle = np.exp(-2j * np.pi * np.arange(max(m // 2, 1)) / m)
    split = np.exp(-2j * np.pi * np.arange(m) / n)
    return FFTPlan(n, rev, twiddle, split, np.zeros(m, np.complex128))


@njit(cache=True, nogil=True)
def _cfft_inplace(z, bitrev, twiddle, inverse):
    """In-place radix-2 FFT of z (length m, a power of two); inverse is unscaled."""
    m = z.shape[0]
    for i in range(m):
        j = bitrev[i]
        if j > i:
            t = z[i]
            z[i] = z[j]
            z[j] = t
    size = 2
    while size <= m:
        half = size // 2
        step = m // size
        for start in range(0, m, size):
            for k in range(half):
                w = twiddle[k * step]
                if inverse:
                    w = w.conjugate()
                a = z[start + k]
                b = z[start + k + half] * w
                z[start + k] = a + b
                z[start + k + half] = a - b
        size *= 2


@njit(cache=True, nogil=True)
def rfft_into(x, out, bitrev, twiddle, split, work):
    """out[:n/2+1] = numpy.fft.rfft(x) for real x of length n, without allocating."""
    m = work.shape[0]
    for i in range(m):
        work[i] = complex(x[2 * i], x[2 * i + 1])
    _cfft_inplace(work, bitrev, twiddle, False)
    z0 = work[0]
    out[0] = z0.real + z0.imag
    out[m] = z0.real - z0.imag
    for k in range(1, m):
        a = work[k]
        b = work[m - k].conjugate()
        even = 0.5 * (a + b)
        odd = -0.5j * (a - b)
        out[k] = even + split[k] * odd


@njit(cache=True, nogil=True)
def irfft_into(spec, out, bitrev, twiddle, split, work):
    """out[:n] = numpy.fft.irfft(spec, n) for a half spectrum of n/2+1 bins, without allocating."""
    m = work.shape[0]
    for k in range(m):
        a = spec[k]
        b = spec[m - k].conjugate()
        even = 0.5 * (a + b)
        odd = 0.5 * (a - b) * split[k].conjugate()
        work[k] = even + 1j * odd
    _cfft_inplace(work, bitrev, twiddle, True)
    scale = 2.0 / (2 * m)
    for i in range(m):
        out[2 * i] = work[i].real * scale
        out[2 * i + 1] = work[i].imag * scale
