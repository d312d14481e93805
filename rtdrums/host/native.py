"""The audio callback as compiled code that PortAudio calls directly, without the interpreter.

A Python callback (sounddevice's cffi wrapper) must take the interpreter lock before it runs:
whenever another thread of the host holds it (view, statistics, MIDI sender), or the thread
holding it is descheduled, the callback waits outside its measured time and the block is late.
`compile_callback` gives a Numba @cfunc with PortAudio's PaStreamCallback signature; its
userData is the address of one `Core` (a Numba StructRef) holding the engine's bundle and every
array the callback touches, all allocated by the session before the stream opens. Per block it
does what LiveSession._process does: mixes the input to mono, makes the engine's block call,
plays the sampler's voices, forms the outputs and adds the routed ones into the channels, accumulates meters and counters, writes the notes into
the MIDI sender's ring (waking its thread with one write() on a pipe) and copies the block into
the recorder's ring. Python reads all of it outside the callback.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types, typeof
from numba.core import cgutils
from numba.experimental import structref
from numba.extending import intrinsic, overload

from ..engine import process_block
from ..events import EVENT_DTYPE
from ..outputs import form_outputs, route_outputs
from ..sampler.voices import SamplerArrays, render_block
from .midi import HEAD as M_HEAD, NEXT_OFF as M_NEXT_OFF, POS as M_POS, TAIL as M_TAIL
from .recorder import ACTIVE as R_ACTIVE, DROPPED as R_DROPPED, HEAD as R_HEAD, TAIL as R_TAIL

# Core.ctl: counters shared with Python. The callback writes all but TOTAL_FRAMES, N_IN, N_OUT,
# WAKE_FD and REC_ON, which the session sets before the stream starts.
(POS, CALLBACKS, MAX_NS, IN_OVERFLOW, OUT_UNDERFLOW, DELAY_SUM, STOP, TOTAL_FRAMES, N_IN, N_OUT,
 WAKE_FD, REC_ON, MIDI_FULL, STREAM) = range(14)
# STREAM: the PaStream pointer (set once the stream is open, before it starts), for the entry
# wait: Pa_GetStreamTime at entry minus the time PortAudio stamped before calling (currentTime)
N_CTL = 16
PA_INPUT_OVERFLOW, PA_OUTPUT_UNDERFLOW = 0x2, 0x4      # PaStreamCallbackFlags bits
CLOCK_MONOTONIC = 1                                    # what time.perf_counter_ns reads on Linux


def _load_portaudio_symbols() -> None:
    """Make Pa_GetStreamTime resolvable by compiled code (cffi loads PortAudio privately)."""
    import llvmlite.binding as llb
    from ctypes.util import find_library
    name = find_library("portaudio")
    if name:
        try:
            llb.load_library_permanently(name)
        except RuntimeError:
            pass


_load_portaudio_symbols()


class CoreArrays(NamedTuple):
    """What the compiled callback reads and writes, besides the engine (see LiveSession)."""
    ctl: np.ndarray          # (N_CTL,) int64, indices above
    chans: np.ndarray        # (1 or 2,) int64 input channels (0-based) mixed to mono
    routes: np.ndarray       # (n, 2) int64: output column (rtdrums.outputs), interface channel
    mono: np.ndarray         # (block,) float32
    stems: np.ndarray        # (block, stems) float32
    events: np.ndarray       # EVENT_DTYPE
    peaks: np.ndarray        # (outputs,) float32 peak of each output, max-accumulated; the view
                             # resets them
    hits: np.ndarray         # (drums,) int64
    last_vel: np.ndarray     # (drums,) int32
    last_pos: np.ndarray     # (drums,) int64
    timings: np.ndarray      # (2**k,) int64 callback durations (ns), a ring
    waits: np.ndarray        # (2**k,) int64 entry waits (ns), a ring (see STREAM)
    midi_ring: np.ndarray    # (m, 4) int64 NoteSender.ring
    midi_ctl: np.ndarray     # (4,) int64 NoteSender.ctl
    rec_ctl: np.ndarray      # the Recorder ring's arrays (1-slot dummies without a recorder)
    rec_pos: np.ndarray
    rec_nframes: np.ndarray
    rec_nev: np.ndarray
    rec_ev: np.ndarray
    rec_data: np.ndarray
    gains: np.ndarray        # (n,) float32 linear gain of each route
    outs: np.ndarray         # (block, outputs) float32, see rtdrums.outputs
    sampler: SamplerArrays   # the sampler's tables, voices and per-drum buffer


@structref.register
class CoreType(types.StructRef):
    pass


class Core(structref.StructRefProxy):
    """Python-side handle of the callback's state; only compiled code reads its fields."""


structref.define_boxing(CoreType, Core)


def _new_core(engine, arrays):
    raise NotImplementedError("compiled code only")


@overload(_new_core)
def _new_core_typed(engine, arrays):
    core_type = CoreType([("engine", engine), ("a", arrays)])

    def impl(engine, arrays):
        c = structref.new(core_type)
        c.engine = engine
        c.a = arrays
        return c
    return impl


@njit(cache=True)
def _make_core(engine, arrays):
    return _new_core(engine, arrays)


@intrinsic
def _meminfo_address(typingctx, s):
    def codegen(context, builder, sig, args):
        st = cgutils.create_struct_proxy(s)(context, builder, value=args[0])
        return builder.ptrtoint(st.meminfo, cgutils.intp_t)
    return types.intp(s), codegen


@njit(cache=True)
def _address(core):
    return _meminfo_address(core)


@intrinsic
def _release_fence(typingctx):
    """Stores before this are visible to another thread before stores after it."""
    def codegen(context, builder, sig, args):
        builder.fence("release")
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def _is_null(typingctx, p):
    def codegen(context, builder, sig, args):
        return builder.icmp_unsigned("==", builder.ptrtoint(args[0], cgutils.intp_t),
                                     cgutils.intp_t(0))
    return types.boolean(types.voidptr), codegen


@intrinsic
def _now_ns(typingctx):
    """clock_gettime(CLOCK_MONOTONIC) in ns, called from compiled code (no interpreter)."""
    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        ts_type = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_type)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i32, ts_type.as_pointer()]), "clock_gettime")
        builder.call(fn, [i32(CLOCK_MONOTONIC), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, i64(1_000_000_000)), nsec)
    return types.int64(), codegen


@intrinsic
def _stream_time_ns(typingctx, stream, time_info):
    """(Pa_GetStreamTime(stream) - time_info->currentTime) in ns: how long after PortAudio
    stamped the cycle the callback started."""
    def codegen(context, builder, sig, args):
        dbl, i64, i8p = ir.DoubleType(), ir.IntType(64), ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(dbl, [i8p]), "Pa_GetStreamTime")
        now = builder.call(fn, [builder.inttoptr(args[0], i8p)])
        stamped = builder.load(builder.gep(builder.bitcast(args[1], dbl.as_pointer()),
                                           [ir.IntType(32)(1)]))        # .currentTime
        return builder.fptosi(builder.fmul(builder.fsub(now, stamped), dbl(1e9)), i64)
    return types.int64(types.int64, types.voidptr), codegen


@intrinsic
def _wake(typingctx, fd):
    """write(fd, "\\1", 1): one byte into a non-blocking pipe; errors (pipe full) ignored."""
    def codegen(context, builder, sig, args):
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        buf = cgutils.alloca_once(builder, i8)
        builder.store(i8(1), buf)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [i32, i8.as_pointer(), i64]), "write")
        builder.call(fn, [builder.trunc(args[0], i32), buf, i64(1)])
        return context.get_dummy_value()
    return types.none(fd), codegen


@njit(cache=True, nogil=True)
def _flags(ctl, status):
    if status & PA_INPUT_OVERFLOW:
        ctl[IN_OVERFLOW] += 1
    if status & PA_OUTPUT_UNDERFLOW:
        ctl[OUT_UNDERFLOW] += 1


@njit(cache=True, nogil=True)
def run_block(engine, a, x, out, n):
    """One block: x (n, n_in) float32 input, out (n, n_out) float32 output (n_out may be 0).
    Returns the number of events, in a.events (what the JACK backend sends as MIDI)."""
    ctl = a.ctl
    mono, stems, ev = a.mono[:n], a.stems[:n], a.events
    if a.chans.shape[0] == 2:
        c0, c1 = a.chans[0], a.chans[1]
        for i in range(n):
            mono[i] = (x[i, c0] + x[i, c1]) * np.float32(0.5)
    else:
        c0 = a.chans[0]
        for i in range(n):
            mono[i] = x[i, c0]
    ne = process_block(mono, stems, ev, engine)
    render_block(a.sampler, ev, ne, n)
    outs = a.outs
    form_outputs(mono, stems, a.sampler.smp, a.sampler.keep, outs, n)
    # an output's effect chain would run here, on outs[:n], before the routing and the meters
    if out.shape[1] > 0:
        route_outputs(outs, a.routes, a.gains, out, n)
    for s in range(a.peaks.shape[0]):
        pk = a.peaks[s]
        for i in range(n):
            v = abs(outs[i, s])
            if v > pk:
                pk = v
        a.peaks[s] = pk
    pos = ctl[POS]
    end = pos + n
    _midi(a, ev, ne, end)
    if ctl[REC_ON] and not (ctl[TOTAL_FRAMES] and pos >= ctl[TOTAL_FRAMES]):
        _record(a, mono, stems, ev, ne, pos)
    for e in range(ne):
        d = ev[e]["drum"]
        a.hits[d] += 1
        a.last_vel[d] = ev[e]["velocity"]
        a.last_pos[d] = end
        ctl[DELAY_SUM] += ev[e]["emitted"] - ev[e]["onset"]
    ctl[POS] = end
    return ne


@njit(cache=True, nogil=True)
def _midi(a, ev, ne, end):
    """NoteSender.on_block's thread path: notes into its ring, then wake its thread."""
    ctl, ring, mc = a.ctl, a.midi_ring, a.midi_ctl
    if ctl[WAKE_FD] < 0 or (ne == 0 and mc[M_NEXT_OFF] > end):   # no MIDI; nothing due
        return
    m = ring.shape[0]
    t_ns = _now_ns()
    for e in range(ne):
        h = mc[M_HEAD]
        if h - mc[M_TAIL] >= m:
            ctl[MIDI_FULL] += 1
            continue
        j = h % m
        ring[j, 0] = ev[e]["note"]
        ring[j, 1] = ev[e]["velocity"]
        ring[j, 2] = end
        ring[j, 3] = t_ns
        _release_fence()
        mc[M_HEAD] = h + 1
    mc[M_POS] = end
    _release_fence()
    _wake(ctl[WAKE_FD])


@njit(cache=True, nogil=True)
def _record(a, mono, stems, ev, ne, pos):
    """Recorder.push: one block into the shared ring, or count it dropped when the ring is full."""
    rc = a.rec_ctl
    if not rc[R_ACTIVE]:
        return
    slots = a.rec_pos.shape[0]
    h = rc[R_HEAD]
    if h - rc[R_TAIL] >= slots:
        rc[R_DROPPED] += 1
        return
    j = h % slots
    n = mono.shape[0]
    d = a.rec_data[j]
    for i in range(n):
        d[i, 0] = mono[i]
        for s in range(stems.shape[1]):
            d[i, 1 + s] = stems[i, s]
    a.rec_nframes[j] = n
    a.rec_pos[j] = pos
    k = min(ne, a.rec_ev.shape[1])
    for e in range(k):
        a.rec_ev[j, e]["onset"] = ev[e]["onset"]
        a.rec_ev[j, e]["emitted"] = ev[e]["emitted"]
        a.rec_ev[j, e]["drum"] = ev[e]["drum"]
        a.rec_ev[j, e]["note"] = ev[e]["note"]
        a.rec_ev[j, e]["velocity"] = ev[e]["velocity"]
        a.rec_ev[j, e]["decided"] = ev[e]["decided"]
    a.rec_nev[j] = k
    _release_fence()
    rc[R_HEAD] = h + 1


def _callback(inp, outp, frames, time_info, status, c):
    """PaStreamCallback; userData arrives as the Core itself (a StructRef is passed as its
    meminfo pointer, which is what compile_callback gives PortAudio)."""
    a = c.a
    ctl = a.ctl
    t0 = _now_ns()
    wait = _stream_time_ns(ctl[STREAM], time_info) if ctl[STREAM] and not _is_null(time_info) \
        else 0
    _flags(ctl, status)
    n_in, n_out = ctl[N_IN], ctl[N_OUT]
    x = carray(inp, (frames, n_in), dtype=np.float32)
    if n_out > 0 and not _is_null(outp):
        out = carray(outp, (frames, n_out), dtype=np.float32)
    else:
        out = carray(inp, (frames, 0), dtype=np.float32)
    block = a.mono.shape[0]
    for off in range(0, frames, block):                     # one pass with a fixed blocksize
        m = min(block, frames - off)
        run_block(c.engine, a, x[off:off + m], out[off:off + m], m)
    finish_callback(a, t0, wait)
    return 0


@njit(cache=True, nogil=True)
def finish_callback(a, t0, wait):
    """The callback's bookkeeping at its end: its duration and entry wait (ns) into the rings,
    the maximum, the count, and the stop flag once the duration is reached."""
    ctl = a.ctl
    dt = _now_ns() - t0
    k = ctl[CALLBACKS]
    a.timings[k & (a.timings.shape[0] - 1)] = dt
    a.waits[k & (a.waits.shape[0] - 1)] = wait
    if dt > ctl[MAX_NS]:
        ctl[MAX_NS] = dt
    ctl[CALLBACKS] = k + 1
    if ctl[TOTAL_FRAMES] and ctl[POS] >= ctl[TOTAL_FRAMES]:
        ctl[STOP] = 1


class NativeCallback(NamedTuple):
    """Keep it alive while the stream runs: `cfunc.address` is the PaStreamCallback, `userdata`
    the address to pass with it (that of `core`)."""
    core: Core
    userdata: int
    cfunc: object


def compile_callback(engine_bundle, arrays: CoreArrays) -> NativeCallback:
    """The callback's state (sharing every array given) and the callback compiled for it.

    The signature names the Core's type, so the compiled callback is cached on disk per type
    (a changed engine layout is a new type, never a stale cache hit)."""
    core = _make_core(engine_bundle, arrays)
    sig = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64,
                      typeof(core))
    return NativeCallback(core, int(_address(core)), cfunc(sig, cache=True, nogil=True)(_callback))


def dummy_recorder_arrays(channels: int, block: int) -> tuple:
    """Recorder ring arrays for a session that does not record (never written: REC_ON is 0)."""
    return (np.zeros(8, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int32),
            np.zeros(1, np.int32), np.zeros((1, 1), EVENT_DTYPE),
            np.zeros((1, block, channels), np.float32))
