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


# -- the lean kernels ---------------------------------------------------------------------------
# The same transforms on split real and imaginary arrays, with each stage's twiddles stored
# contiguously: every butterfly loop runs over contiguous doubles, which LLVM vectorises (the
# kernels above index the twiddles with a stride and branch on the direction inside the loop).
# The inverse is the forward transform with the real and imaginary arrays swapped.

def lean_tables(n: int) -> np.ndarray:
    """(4, n/2) float64 for a real FFT of n points: each radix-2 stage's twiddles (stage of half
    size h at columns h-1 .. 2h-2) in rows 0 (real) and 1 (imaginary), the real/complex split
    factors exp(-2j pi k / n) in rows 2 and 3."""
    plan = make_plan(n)
    m = n // 2
    t = np.zeros((4, m))
    h = 1
    while h < m:
        w = np.exp(-1j * np.pi * np.arange(h) / h)
        t[0, h - 1:2 * h - 1], t[1, h - 1:2 * h - 1] = w.real, w.imag
        h *= 2
    t[2], t[3] = plan.split.real, plan.split.imag
    return t


@njit(cache=True, nogil=True)
def _cfft_split(re, im, bitrev, tables):
    """In-place radix-2 FFT of re + 1j im (length m, a power of two); swap re and im for the
    unscaled inverse."""
    m = re.shape[0]
    for i in range(m):
        j = bitrev[i]
        if j > i:
            t = re[i]
            re[i] = re[j]
            re[j] = t
            t = im[i]
            im[i] = im[j]
            im[j] = t
    if m < 4:
        for a in range(0, m - 1, 2):
            br, bi = re[a + 1], im[a + 1]
            re[a + 1] = re[a] - br
            im[a + 1] = im[a] - bi
            re[a] += br
            im[a] += bi
        return
    for a in range(0, m, 4):                 # the first two stages at once: twiddles 1 and -1j
        r0, i0, r1, i1 = re[a] + re[a + 1], im[a] + im[a + 1], re[a] - re[a + 1], im[a] - im[a + 1]
        r2, i2, r3, i3 = re[a + 2] + re[a + 3], im[a + 2] + im[a + 3], re[a + 2] - re[a + 3], im[a + 2] - im[a + 3]
        re[a], im[a], re[a + 2], im[a + 2] = r0 + r2, i0 + i2, r0 - r2, i0 - i2
        re[a + 1], im[a + 1], re[a + 3], im[a + 3] = r1 + i3, i1 - r3, r1 - i3, i1 + r3
    half = 4
    while half < m:
        size = 2 * half
        wr = tables[0, half - 1:size - 1]
        wi = tables[1, half - 1:size - 1]
        for start in range(0, m, size):
            # views of the two halves: the loop below then vectorises (indexing re and im with
            # computed offsets does not)
            ra, ia = re[start:start + half], im[start:start + half]
            rb, ib = re[start + half:start + size], im[start + half:start + size]
            for k in range(half):
                xr, xi = rb[k], ib[k]
                br = xr * wr[k] - xi * wi[k]
                bi = xr * wi[k] + xi * wr[k]
                rb[k] = ra[k] - br
                ib[k] = ia[k] - bi
                ra[k] += br
                ia[k] += bi
        half = size


@njit(cache=True, nogil=True)
def rfft_lean(x, out, bitrev, tables, work):
    """out[:n/2+1] = numpy.fft.rfft(x) for real x of length n; work (2, n/2) float64 scratch."""
    m = work.shape[1]
    re, im = work[0], work[1]
    for i in range(m):
        re[i] = x[2 * i]
        im[i] = x[2 * i + 1]
    _cfft_split(re, im, bitrev, tables)
    out[0] = re[0] + im[0]
    out[m] = re[0] - im[0]
    for k in range(1, m):
        ar, ai, br, bi = re[k], im[k], re[m - k], -im[m - k]
        er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
        orr, oi = 0.5 * (ai - bi), -0.5 * (ar - br)          # -0.5j (a - b)
        sr, si = tables[2, k], tables[3, k]
        out[k] = complex(er + sr * orr - si * oi, ei + sr * oi + si * orr)


@njit(cache=True, nogil=True)
def irfft_masked_lean(spec, mask, out, first, bitrev, tables, work):
    """out[first:n] = numpy.fft.irfft(spec * mask, n)[first:] for a half spectrum of n/2+1 bins
    and real mask (n/2+1,); out[:first] is left as it is; work (2, n/2) float64 scratch."""
    m = work.shape[1]
    re, im = work[0], work[1]
    for k in range(m):
        a = spec[k] * mask[k]
        b = spec[m - k] * mask[m - k]
        er, ei = 0.5 * (a.real + b.real), 0.5 * (a.imag - b.imag)
        dr, di = 0.5 * (a.real - b.real), 0.5 * (a.imag + b.imag)
        sr, si = tables[2, k], -tables[3, k]                 # conj(split[k])
        orr, oi = dr * sr - di * si, dr * si + di * sr      # odd = 0.5 (a - b) conj(split[k])
        re[k] = er - oi                                     # even + 1j odd
        im[k] = ei + orr
    _cfft_split(im, re, bitrev, tables)                     # swapped: the inverse transform
    scale = 1.0 / m
    for i in range(first // 2, m):
        out[2 * i] = re[i] * scale
        out[2 * i + 1] = im[i] * scale
