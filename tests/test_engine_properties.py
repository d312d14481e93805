"""Properties of the engine's block call under any input a device or file can deliver.

Hypothesis draws sample rates from the preset's range, block sizes from 1 to 1024 and signals
built from silence, DC, full-scale square waves, noise, single samples and bursts of NaN and Inf.
Whatever comes in: no exception, finite stems, events with valid fields, and the stems (delayed by
the stem latency) summing to the input the engine accepted (NaN/Inf read as silence, clipped at
+-16). Rates outside the range are refused with one line that names it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtdrums.engine import INPUT_LIMIT, Engine
from rtdrums.errors import UserError
from rtdrums.preset import load_preset

PRESET = load_preset("default")
LO, HI = PRESET.stft.rate_range()
RATES = sorted({LO, 44100, 48000, 88200, 96000, 176400, HI})
_ENGINES: dict[int, Engine] = {}


def _engine(rate: int) -> Engine:
    if rate not in _ENGINES:
        _ENGINES[rate] = Engine(PRESET, rate, max_block=1024)
        _ENGINES[rate].warm()
    e = _ENGINES[rate]
    e.reset()
    return e


@st.composite
def pieces(draw):
    """A piece of signal: one of the kinds a stream can throw at the engine."""
    n = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["silence", "dc", "square", "noise", "nan", "inf", "single", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    if kind == "silence":
        return np.zeros(n, np.float32)
    if kind == "dc":
        return np.full(n, draw(st.floats(-1, 1)), np.float32)
    if kind == "square":
        period = draw(st.integers(2, 400))
        return np.where((np.arange(n) // (period // 2 or 1)) % 2, 1.0, -1.0).astype(np.float32)
    if kind == "noise":
        return rng.uniform(-1, 1, n).astype(np.float32)
    if kind == "nan":
        return np.full(n, np.nan, np.float32)
    if kind == "inf":
        return np.where(rng.random(n) < 0.5, np.inf, -np.inf).astype(np.float32)
    if kind == "single":
        x = np.zeros(n, np.float32)
        x[rng.integers(n)] = 1.0
        return x
    return rng.uniform(-1e6, 1e6, n).astype(np.float32)       # far beyond full scale


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.sampled_from(RATES), block=st.integers(1, 1024), parts=st.lists(pieces(), min_size=1, max_size=4))
def test_block_call_survives_anything(rate, block, parts):
    engine = _engine(rate)
    x = np.concatenate(parts)
    lat = engine.stem_latency
    x = np.concatenate([x, np.zeros(lat, np.float32)])      # flush: every input sample reaches the stems
    stems = np.zeros((len(x), len(engine.stem_names)), np.float32)
    for start in range(0, len(x), block):
        out, events = engine.process(x[start:start + block])
        stems[start:start + len(out)] = out
        assert np.all((events["drum"] >= 0) & (events["drum"] < len(engine.drum_names)))
        assert np.all((events["velocity"] >= 1) & (events["velocity"] <= 127))
        assert np.all(events["onset"] <= events["emitted"])
    assert np.all(np.isfinite(stems))
    accepted = np.clip(np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0),
                       -INPUT_LIMIT, INPUT_LIMIT)
    total = stems.astype(np.float64).sum(axis=1)[lat:]
    assert np.max(np.abs(total - accepted[:len(x) - lat])) <= 1e-5 * max(1.0, np.max(np.abs(accepted)))
    assert engine.bad_samples == int(np.sum(~np.isfinite(x)))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, HI * 2])
def test_rates_outside_the_range_are_refused_in_one_line(rate):
    with pytest.raises(UserError) as err:
        Engine(PRESET, rate)
    msg = str(err.value)
    assert "\n" not in msg and f"{LO} to {HI} Hz" in msg and str(rate) in msg
