"""The outputs a host routes to interface channels, formed per block from the engine's stems, the
input and the sampler's voices; and the routing itself. Compiled: both run in the audio callback.

Columns of `outs`: the stems (the drums, then the residual), then dry, sampler and mix:
  drum d   its stem (unless the sampler replaces it) + its samples;
  dry      the (mono) input;
  sampler  every sample;
  mix      the drum outputs + the residual: the input, with the drums replaced or layered.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EXTRA = ("dry", "sampler", "mix")
# the columns' names for a preset of kick, snare and hi-hat (every preset rtdrums trains): what
# settings files, routes and effect chains name
OUTPUTS = ("kick", "snare", "hihat", "residual") + EXTRA


def output_names(stem_names) -> tuple[str, ...]:
    return tuple(stem_names) + EXTRA


@njit(cache=True, nogil=True)
def form_outputs(mono, stems, smp, keep, outs, n):
    """outs[:n] from the block's input mono, stems (n, D + 1) and samples smp (n, D)."""
    D = smp.shape[1]
    for i in range(n):
        total = stems[i, D]
        sampled = np.float32(0.0)
        for d in range(D):
            v = keep[d] * stems[i, d] + smp[i, d]
            outs[i, d] = v
            total += v
            sampled += smp[i, d]
        outs[i, D] = stems[i, D]
        outs[i, D + 1] = mono[i]
        outs[i, D + 2] = sampled
        outs[i, D + 3] = total


@njit(cache=True, nogil=True)
def route_outputs(outs, routes, gains, out, n):
    """out[:n] (interface channels) = sum over routes r of gains[r] * outs[:, routes[r, 0]] on
    channel routes[r, 1] (0-based)."""
    for i in range(n):
        for c in range(out.shape[1]):
            out[i, c] = 0.0
    for r in range(routes.shape[0]):
        src, ch, g = routes[r, 0], routes[r, 1], gains[r]
        for i in range(n):
            out[i, ch] += g * outs[i, src]
