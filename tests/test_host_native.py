"""The compiled audio callback (host.native), called the way PortAudio calls it: a rendered
groove in interleaved stereo blocks, compared with the offline engine on the same mono mix."""

from __future__ import annotations

import ctypes
import os
import time
from ctypes.util import find_library

import numpy as np
import pytest

from rtdrums.engine import Engine
from rtdrums.events import EVENT_DTYPE
from rtdrums.host import native
from rtdrums.host.midi import NoteSender
from rtdrums.host.recorder import ACTIVE, DROPPED, HEAD, Recorder
from rtdrums.preset import load_preset
from rtdrums.sampler.build import build_sampler

pytestmark = pytest.mark.skipif(not find_library("portaudio"),
                                reason="needs libportaudio2 (the callback calls Pa_GetStreamTime)")
SR, BLOCK = 48000, 128
PA_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                               ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p)
# (source column: 0..3 stems, 4 dry; output channel, 0-based)
ROUTES = [(0, 0), (1, 1), (4, 2), (3, 2)]


@pytest.fixture(scope="module")
def take(rendered_groove):
    """Left/right channels whose mean is the groove, a whole number of blocks long."""
    n = 6 * SR // BLOCK * BLOCK
    x = rendered_groove.mix[:n].astype(np.float32)
    tilt = np.linspace(-0.1, 0.1, n, dtype=np.float32) * x
    return np.stack([x + tilt, x - tilt], axis=1)


def _arrays(eng, n_out, sender, rec, total_frames=0):
    D = len(eng.drum_names)
    ctl = np.zeros(native.N_CTL, np.int64)
    ctl[native.N_IN], ctl[native.N_OUT] = 2, n_out
    ctl[native.WAKE_FD] = sender._wfd
    ctl[native.REC_ON] = 1
    ctl[native.TOTAL_FRAMES] = total_frames
    r = rec.ring
    return native.CoreArrays(
        ctl, np.array([0, 1], np.int64), np.array(ROUTES, np.int64), np.zeros(BLOCK, np.float32),
        np.zeros((BLOCK, D + 1), np.float32), np.zeros(256, EVENT_DTYPE), np.zeros(D + 4, np.float32),
        np.zeros(D, np.int64), np.zeros(D, np.int32), np.full(D, -1, np.int64),
        np.zeros(1 << 12, np.int64), np.zeros(1 << 12, np.int64), sender.ring, sender.ctl,
        *(np.asarray(a) for a in (r.ctl, r.pos, r.nframes, r.nev, r.ev, r.data)),
        np.ones(len(ROUTES), np.float32), np.zeros((BLOCK, D + 4), np.float32),
        build_sampler(None, eng.preset, SR, BLOCK))


def _drained(sender, timeout=30.0):
    """Wait until the sender thread has taken every note from its ring."""
    deadline = time.monotonic() + timeout
    while sender.ctl[1] < sender.ctl[0] and time.monotonic() < deadline:
        time.sleep(0.01)


def test_compiled_callback_matches_the_engine(take, tmp_path):
    preset = load_preset("default")
    eng = Engine(preset, sample_rate=SR, max_block=BLOCK)
    eng.warm()
    sent = []
    sender = NoteSender(sent.append, SR, "thread")
    rec = Recorder(tmp_path / "rec", SR, BLOCK, eng.stem_names, eng.drum_names, eng.stem_latency,
                   buffer_s=len(take) / SR + 1)
    try:
        rec.ring.ctl[ACTIVE] = 1                    # the ring alone: no writer process
        a = _arrays(eng, 3, sender, rec)
        cb = native.compile_callback(eng._bundle, a)
        call = PA_CALLBACK(cb.cfunc.address)
        refs = cb.core._meminfo.refcount
        x = np.concatenate([take, np.zeros((BLOCK, 2), np.float32)])     # + a silent block,
        out = np.zeros((len(x), 3), np.float32)                          # flagged as an xrun
        status = native.PA_INPUT_OVERFLOW | native.PA_OUTPUT_UNDERFLOW
        for p in range(0, len(x), BLOCK):
            flags = status if p + BLOCK == len(x) else 0
            assert call(x[p:].ctypes.data, out[p:].ctypes.data, BLOCK, None, flags,
                        cb.userdata) == 0
        _drained(sender)
        assert cb.core._meminfo.refcount == refs     # the callback takes no reference it keeps
    finally:
        sender.close(all_off=False)
        os.unlink(rec._path)

    mono = (x[:, 0] + x[:, 1]) * np.float32(0.5)
    ref = Engine(preset, sample_rate=SR, max_block=BLOCK)
    stems, events = [], []
    for p in range(0, len(mono), BLOCK):
        s, e = ref.process(mono[p:p + BLOCK])
        stems.append(s.copy())
        events.append(e.copy())
    stems, events = np.concatenate(stems), np.concatenate(events)
    assert len(events) > 10

    # routing: kick, snare, dry + residual, exactly as the engine computes them
    assert np.array_equal(out[:, 0], stems[:, 0])
    assert np.array_equal(out[:, 1], stems[:, 1])
    assert np.array_equal(out[:, 2], mono + stems[:, 3])
    # meters, counters, status flags
    peaks = np.abs(np.concatenate([stems, mono[:, None]], axis=1)).max(axis=0)
    assert np.array_equal(a.peaks[:5], peaks)                # stems, input (then sampler, mix)
    ctl = a.ctl
    assert ctl[native.POS] == len(x) and ctl[native.CALLBACKS] == len(x) // BLOCK
    assert ctl[native.IN_OVERFLOW] == 1 and ctl[native.OUT_UNDERFLOW] == 1
    assert ctl[native.STOP] == 0
    assert (a.timings[:ctl[native.CALLBACKS]] > 0).all() and ctl[native.MAX_NS] > 0
    assert list(a.hits) == [int((events["drum"] == d).sum()) for d in range(len(eng.drum_names))]
    assert ctl[native.DELAY_SUM] == int((events["emitted"] - events["onset"]).sum())
    # MIDI: the sender thread sent one note-on per event, in order, with the engine's velocity
    ons = [m for m in sent if m[0] == 0x99]
    assert ons == [(0x99, int(e["note"]), int(e["velocity"])) for e in events]
    assert sender.ctl[0] == len(events) and sender.handoffs == len(events)
    # recorder ring: every block, sample-exact, with its events
    r = rec.ring
    nb = len(x) // BLOCK
    assert r.ctl[HEAD] == nb and r.ctl[DROPPED] == 0
    data = r.data[:nb].reshape(-1, 1 + stems.shape[1])
    assert np.array_equal(data[:, 0], mono) and np.array_equal(data[:, 1:], stems)
    assert np.array_equal(r.pos[:nb], np.arange(nb) * BLOCK)
    got = np.concatenate([r.ev[j, :r.nev[j]] for j in range(nb)])
    assert np.array_equal(got, events)


def test_compiled_callback_stops_at_the_duration_and_drops_on_a_full_ring(take, tmp_path):
    eng = Engine(load_preset("default"), sample_rate=SR, max_block=BLOCK)
    eng.warm()
    sender = NoteSender(lambda m: None, SR, "thread")
    rec = Recorder(tmp_path / "rec", SR, BLOCK, eng.stem_names, eng.drum_names, eng.stem_latency,
                   buffer_s=0)                      # the minimum: 16 slots
    try:
        rec.ring.ctl[ACTIVE] = 1
        a = _arrays(eng, 0, sender, rec, total_frames=20 * BLOCK)   # input only
        cb = native.compile_callback(eng._bundle, a)
        call = PA_CALLBACK(cb.cfunc.address)
        for k in range(24):
            call(take[k * BLOCK:].ctypes.data, None, BLOCK, None, 0, cb.userdata)
            assert a.ctl[native.STOP] == (k >= 19)
    finally:
        sender.close(all_off=False)
        os.unlink(rec._path)
    assert rec.ring.ctl[HEAD] == 16 and rec.ring.ctl[DROPPED] == 4    # blocks past the duration
    assert a.ctl[native.POS] == 24 * BLOCK                            # are not recorded
