"""The native JACK backend of `rtdrums live` (--backend jack): one JACK client, compiled callback.

With PortAudio on JACK the host is two extra clients in the graph (PortAudio's, and rtmidi's for
MIDI, fed by a thread the callback wakes). Here a single client owns the audio inputs `in_N`, the
audio outputs `out_N` and the MIDI output `midi_out`, and its process callback is a Numba @cfunc
`int (jack_nframes_t nframes, void *arg)` that JACK calls without the interpreter. Per period it
copies the input ports into a staging buffer, runs host.native.run_block (the PortAudio callback's
block body: engine, sampler, routing, meters, counters, recorder ring) once per --block, copies the
outputs to the ports, and writes each note-on into the MIDI port in the SAME cycle with
jack_midi_event_reserve at the frame of the sample that decided it (`decided`). The libjack
functions are called through their addresses (an int64 array filled from JACK-Client's cffi
library), so the compiled callback is cached on disk like the PortAudio one. xruns are counted by a
compiled xrun callback into the same counters PortAudio's status flags feed; a compiled shutdown
callback flags a server that went away. The block size divides the JACK period (checked at start).
"""

from __future__ import annotations

import ctypes
import time
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types, typeof
from numba.core import cgutils
from numba.experimental import structref
from numba.extending import intrinsic, overload

from ..errors import UserError
from ..events import MIDI_CHANNEL, NOTE_LENGTH_S
from . import native
from .audio import BLOCK_SIZES, check_block
from .midi import quiet_stderr
from .native import IN_OVERFLOW, OUT_UNDERFLOW, POS, CoreType, _is_null, _now_ns, run_block

HOSTAPI = "JACK (native client)"
NO_JACK_CLIENT = "the JACK backend needs the JACK-Client package: pip install JACK-Client"
# JackArrays.ctl
(XRUNS, SHUTDOWN, BAD_PERIOD, MIDI_SENT, MIDI_OFFS, MIDI_LOST, ALL_OFF, NEXT_OFF, NOTE_LEN, CLIENT,
 RATE) = range(11)
N_JCTL = 16
# JackArrays.fns: libjack function addresses
F_PORT_BUFFER, F_MIDI_CLEAR, F_MIDI_RESERVE, F_FRAMES_SINCE = range(4)
NOTE_ON, NOTE_OFF = 0x90 | MIDI_CHANNEL, 0x80 | MIDI_CHANNEL
NEVER = np.iinfo(np.int64).max


class JackArrays(NamedTuple):
    """What the JACK process callback needs besides the Core (host.native.CoreArrays)."""
    ctl: np.ndarray          # (N_JCTL,) int64, indices above
    fns: np.ndarray          # (4,) int64 libjack function addresses (F_*)
    in_ports: np.ndarray     # (n_in,) int64 jack_port_t* of in_0 ...
    out_ports: np.ndarray    # (n_out,) int64 jack_port_t* of out_0 ...
    midi_port: np.ndarray    # (1,) int64 jack_port_t* of midi_out, 0 without MIDI
    x: np.ndarray            # (period, n_in) float32 staging: the period's input
    y: np.ndarray            # (period, n_out) float32 staging: the period's output
    off_due: np.ndarray      # (128,) int64 stream position of each note's pending note-off, -1


# -- calls into libjack through an address (no symbol lookup, cacheable) -------------------------
def _fn(builder, address, ret, args):
    return builder.inttoptr(address, ir.FunctionType(ret, args).as_pointer())


_I8P, _I32, _I64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)


@intrinsic
def _port_buffer(typingctx, fn, port, nframes):
    """jack_port_get_buffer(port, nframes)."""
    def codegen(context, builder, sig, args):
        f = _fn(builder, args[0], _I8P, [_I8P, _I32])
        return builder.call(f, [builder.inttoptr(args[1], _I8P), builder.trunc(args[2], _I32)])
    return types.voidptr(types.int64, types.int64, types.int64), codegen


@intrinsic
def _midi_clear(typingctx, fn, buf):
    """jack_midi_clear_buffer(buf)."""
    def codegen(context, builder, sig, args):
        builder.call(_fn(builder, args[0], ir.VoidType(), [_I8P]), [args[1]])
        return context.get_dummy_value()
    return types.none(types.int64, types.voidptr), codegen


@intrinsic
def _midi_reserve(typingctx, fn, buf, time, size):
    """jack_midi_event_reserve(buf, time, size): where to write the event's bytes, or NULL."""
    def codegen(context, builder, sig, args):
        f = _fn(builder, args[0], _I8P, [_I8P, _I32, _I64])
        return builder.call(f, [args[1], builder.trunc(args[2], _I32), args[3]])
    return types.voidptr(types.int64, types.voidptr, types.int64, types.int64), codegen


@intrinsic
def _frames_since(typingctx, fn, client):
    """jack_frames_since_cycle_start(client)."""
    def codegen(context, builder, sig, args):
        r = builder.call(_fn(builder, args[0], _I32, [_I8P]), [builder.inttoptr(args[1], _I8P)])
        return builder.zext(r, _I64)
    return types.int64(types.int64, types.int64), codegen


@intrinsic
def _null(typingctx):
    def codegen(context, builder, sig, args):
        return context.get_constant_null(types.voidptr)
    return types.voidptr(), codegen


# -- MIDI in the cycle ------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _write(j, mbuf, t, status, note, vel):
    p = _midi_reserve(j.fns[F_MIDI_RESERVE], mbuf, t, 3)
    if _is_null(p):                            # the port's buffer is full
        j.ctl[MIDI_LOST] += 1
        return False
    b = carray(p, 3, dtype=np.uint8)
    b[0], b[1], b[2] = status, note, vel
    return True


@njit(cache=True, nogil=True)
def _note_offs(j, mbuf, t, until):
    """Note-offs of every note due by stream position `until`, at frame t of the cycle."""
    nxt = NEVER
    for note in range(128):
        due = j.off_due[note]
        if due < 0:
            continue
        if due <= until:
            if _write(j, mbuf, t, NOTE_OFF, note, 0):
                j.ctl[MIDI_OFFS] += 1
            j.off_due[note] = -1
        elif due < nxt:
            nxt = due
    j.ctl[NEXT_OFF] = nxt


@njit(cache=True, nogil=True)
def send_notes(j, ev, ne, mbuf, pos0, off, n, last):
    """The block's notes (it began at stream position pos0, frame `off` of the cycle): each
    note-on at the frame of its deciding sample, after the note-offs due by the block's end (at
    its first frame). Events go in time order (JACK requires it): no earlier than `last`, the
    frame of the cycle's latest event so far, which is returned."""
    jc = j.ctl
    end = pos0 + n
    if jc[NEXT_OFF] <= end:
        last = max(off, last)
        _note_offs(j, mbuf, last, end)
    for e in range(ne):
        t = off + min(max(ev[e]["decided"] - pos0, 0), n - 1)
        if t < last:
            t = last
        note = ev[e]["note"]
        if j.off_due[note] >= 0:                   # still sounding: close it first
            if _write(j, mbuf, t, NOTE_OFF, note, 0):
                jc[MIDI_OFFS] += 1
        if _write(j, mbuf, t, NOTE_ON, note, ev[e]["velocity"]):
            jc[MIDI_SENT] += 1
        due = end + jc[NOTE_LEN]
        j.off_due[note] = due
        if due < jc[NEXT_OFF]:
            jc[NEXT_OFF] = due
        last = t
    return last


# -- the process callback ----------------------------------------------------------------------
def _process(nframes, c):
    """JackProcessCallback; arg arrives as the JackCore (its meminfo pointer, see compile)."""
    a, j = c.a, c.j
    jc, fns = j.ctl, j.fns
    t0 = _now_ns()
    wait = _frames_since(fns[F_FRAMES_SINCE], jc[CLIENT]) * 1_000_000_000 // jc[RATE]
    n = np.int64(nframes)
    x, y = j.x, j.y
    block = a.mono.shape[0]
    mbuf = _null()
    if j.midi_port[0] != 0:
        mbuf = _port_buffer(fns[F_PORT_BUFFER], j.midi_port[0], n)
        _midi_clear(fns[F_MIDI_CLEAR], mbuf)
    if n > x.shape[0] or n % block != 0:          # the server changed its period: silence
        jc[BAD_PERIOD] = n
        for k in range(y.shape[1]):
            dst = carray(_port_buffer(fns[F_PORT_BUFFER], j.out_ports[k], n), (n,), dtype=np.float32)
            dst[:] = 0.0
        return 0
    for k in range(x.shape[1]):
        src = carray(_port_buffer(fns[F_PORT_BUFFER], j.in_ports[k], n), (n,), dtype=np.float32)
        for i in range(n):
            x[i, k] = src[i]
    midi = not _is_null(mbuf)
    if midi and jc[ALL_OFF] == 1:                 # stopping: every pending note-off, no new notes
        _note_offs(j, mbuf, 0, NEVER - 1)
        jc[ALL_OFF] = 2
    midi = midi and jc[ALL_OFF] == 0
    last = 0
    for off in range(0, n, block):
        pos0 = a.ctl[POS]
        ne = run_block(c.engine, a, x[off:off + block], y[off:off + block], block)
        if midi:
            last = send_notes(j, a.events, ne, mbuf, pos0, off, block, last)
    for k in range(y.shape[1]):
        dst = carray(_port_buffer(fns[F_PORT_BUFFER], j.out_ports[k], n), (n,), dtype=np.float32)
        for i in range(n):
            dst[i] = y[i, k]
    native.finish_callback(a, t0, wait)
    return 0


@cfunc(types.int32(types.voidptr), cache=True, nogil=True)
def _on_xrun(arg):
    """JackXRunCallback: count it as PortAudio's status flags would (input and output)."""
    ctl = carray(arg, (native.N_CTL,), dtype=np.int64)
    ctl[IN_OVERFLOW] += 1
    ctl[OUT_UNDERFLOW] += 1
    return 0


@cfunc(types.void(types.int32, types.voidptr, types.voidptr), cache=True, nogil=True)
def _on_shutdown(code, reason, arg):
    """JackInfoShutdownCallback: the server stopped or dropped this client."""
    jctl = carray(arg, (N_JCTL,), dtype=np.int64)
    jctl[SHUTDOWN] = 1


def _new_jack_core(engine, arrays, jarrays):
    raise NotImplementedError("compiled code only")


@overload(_new_jack_core)
def _new_jack_core_typed(engine, arrays, jarrays):
    core_type = CoreType([("engine", engine), ("a", arrays), ("j", jarrays)])

    def impl(engine, arrays, jarrays):
        c = structref.new(core_type)
        c.engine = engine
        c.a = arrays
        c.j = jarrays
        return c
    return impl


@njit(cache=True)
def _make_jack_core(engine, arrays, jarrays):
    return _new_jack_core(engine, arrays, jarrays)


def compile_process(engine_bundle, arrays: native.CoreArrays, jarrays: JackArrays):
    """(core, its address for JACK's arg, the compiled JackProcessCallback); keep all alive."""
    core = _make_jack_core(engine_bundle, arrays, jarrays)
    sig = types.int32(types.uint32, typeof(core))
    return core, int(native._address(core)), cfunc(sig, cache=True, nogil=True)(_process)


# -- the client ------------------------------------------------------------------------------
def _jack():
    try:
        with quiet_stderr():
            import jack
    except ImportError:
        raise UserError(NO_JACK_CLIENT) from None
    except OSError:
        raise UserError("the JACK library (libjack) was not found: install JACK (Debian/Ubuntu: "
                        "apt-get install jackd2), or use --backend portaudio") from None
    return jack


def available() -> bool:
    """Whether the JACK backend can be tried here (JACK-Client and libjack importable)."""
    try:
        _jack()
        return True
    except UserError:
        return False


def _open_problem(jack, name: str, status) -> str:
    """Why jack_client_open failed. JACK 2 answers a taken exact name with the same status as a
    missing server (failure, server_error), so a probe client tells the two apart."""
    if not status.name_not_unique:
        try:
            with quiet_stderr():
                probe = jack.Client("rtdrums-probe", no_start_server=True)
        except jack.JackOpenError:
            return "no JACK server is running: start jackd (or use --backend portaudio)"
        try:
            probe.get_uuid_for_client_name(name)
            taken = True
        except jack.JackError:
            taken = False
        finally:
            probe.close()
        if not taken:
            return f"could not open the JACK client {name!r}: {status}"
    return (f"a JACK client named {name!r} is already running: stop it, or use --client-name "
            f"with another name")


class _LatencyRange(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


class JackMidiPort:
    """The client's MIDI output, as the view and the session see an rtmidi output."""

    def __init__(self, description: str):
        self.description = description

    def close(self) -> None:
        pass


class JackBackend:
    """One JACK client for `rtdrums live`: opened and checked by the constructor (UserError on
    any problem), streamed by `stream()` (a context manager like a sounddevice stream)."""

    def __init__(self, cfg):
        self.jack = jack = _jack()
        self.cfg = cfg
        if cfg.effects:
            raise UserError("effect chains run in the Python callback, which the JACK backend does "
                            "not have: use --backend portaudio (docs/effects.md)")
        if cfg.midi and cfg.midi_backend == "alsa":
            raise UserError("the JACK backend sends MIDI on its own JACK port: use --midi-backend "
                            "jack (or auto), or --backend portaudio for ALSA MIDI")
        name = cfg.client_name
        try:
            with quiet_stderr():
                self.client = jack.Client(name, use_exact_name=True, no_start_server=True)
        except jack.JackOpenError as e:
            raise UserError(_open_problem(jack, name, e.status)) from None
        try:
            self._check_and_find(cfg)
        except BaseException:
            self.close()
            raise

    def _check_and_find(self, cfg) -> None:
        c = self.client
        self.rate, self.period = c.samplerate, c.blocksize
        if cfg.sample_rate != self.rate:
            raise UserError(f"the JACK server runs at {self.rate} Hz, not {cfg.sample_rate}: use "
                            f"--rate {self.rate}, or restart jackd with --rate {cfg.sample_rate}")
        check_block(cfg.block)
        if cfg.block > self.period or self.period % cfg.block:
            fits = [b for b in BLOCK_SIZES if b <= self.period and self.period % b == 0]
            raise UserError(f"block size {cfg.block} does not fit the JACK period of {self.period} "
                            f"frames (the native client runs whole periods in blocks): use --block "
                            f"{self.period} or a divisor ({', '.join(map(str, fits))}), or restart "
                            f"jackd with --period {cfg.block}")
        self.capture, self.in_dev = self._device(cfg.input_device, "input")
        self.playback, self.out_dev = self._device(cfg.output_device, "output")

    def _device(self, spec, kind: str) -> tuple[list[str], dict]:
        """The audio ports of the JACK client that stands for the device (default: the physical
        ones, i.e. `system`), in order, and a device dict like audio.find_device's."""
        is_in = kind == "input"           # our input reads that client's output ports
        ports = self.client.get_ports(is_audio=True, is_output=is_in, is_input=not is_in)
        ports = [p for p in ports if not p.name.startswith(self.client.name + ":")]
        clients = list(dict.fromkeys(p.name.split(":", 1)[0] for p in ports))
        if spec is None or spec == "":
            phys = [p for p in ports if p.is_physical]
            who = phys[0].name.split(":", 1)[0] if phys else (clients[0] if clients else None)
            if who is None:
                raise UserError(f"the JACK server has no {'capture' if is_in else 'playback'} "
                                f"ports: start jackd with an audio device")
        else:
            s = str(spec).lower()
            hits = [n for n in clients if n.lower() == s] or [n for n in clients if s in n.lower()]
            if not hits:
                raise UserError(f"no JACK client matches {kind} device {spec!r}; clients with "
                                f"{kind} ports: {', '.join(clients) or 'none'}")
            who = hits[0]
        names = [p.name for p in ports if p.name.split(":", 1)[0] == who]
        n = len(names)
        return names, {"index": -1, "name": who, "hostapi_name": HOSTAPI,
                       "max_input_channels": n if is_in else 0,
                       "max_output_channels": 0 if is_in else n}

    def midi_target(self, spec: str | None) -> str | None:
        """The JACK MIDI input port to connect to (None: leave midi_out unconnected)."""
        if not spec:
            return None
        ports = [p.name for p in self.client.get_ports(is_midi=True, is_input=True)
                 if not p.name.startswith(self.client.name + ":")]
        hits = [p for p in ports if p == spec] or [p for p in ports if spec.lower() in p.lower()]
        if not hits:
            raise UserError(f"no JACK MIDI port matches {spec!r}; ports: {', '.join(ports) or 'none'}"
                            f" (omit --midi-port to leave {self.client.name}:midi_out unconnected)")
        return hits[0]

    def stream(self, engine_bundle, arrays: native.CoreArrays, n_in: int, n_out: int,
               midi: bool) -> "JackStream":
        return JackStream(self, engine_bundle, arrays, n_in, n_out, midi)

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.deactivate()
            self.client.close()
            self.client = None


class JackStream:
    """The registered ports and the compiled callbacks; `with` activates the client and makes its
    connections, and on exit sends the pending note-offs, deactivates and closes it."""

    def __init__(self, backend: JackBackend, engine_bundle, arrays: native.CoreArrays, n_in: int,
                 n_out: int, midi: bool):
        jack, c = backend.jack, backend.client
        self.backend, self.timings, self.core_ctl = backend, arrays.timings, arrays.ctl
        lib, ffi = jack._lib, jack._ffi
        addr = lambda p: int(ffi.cast("intptr_t", p))        # noqa: E731
        try:
            self.ins = [c.inports.register(f"in_{k}") for k in range(n_in)]
            self.outs = [c.outports.register(f"out_{k}") for k in range(n_out)]
            self.midi = c.midi_outports.register("midi_out") if midi else None
        except jack.JackError as e:
            raise UserError(f"could not register the JACK ports of {c.name}: {e}") from None
        period = backend.period
        jctl = np.zeros(N_JCTL, np.int64)
        jctl[NEXT_OFF] = NEVER
        jctl[NOTE_LEN] = max(1, int(round(NOTE_LENGTH_S * backend.rate)))
        jctl[CLIENT], jctl[RATE] = addr(c._ptr), backend.rate
        fns = np.array([addr(lib.jack_port_get_buffer), addr(lib.jack_midi_clear_buffer),
                        addr(lib.jack_midi_event_reserve), addr(lib.jack_frames_since_cycle_start)],
                       np.int64)
        self.j = JackArrays(jctl, fns, np.array([addr(p._ptr) for p in self.ins], np.int64),
                            np.array([addr(p._ptr) for p in self.outs], np.int64),
                            np.array([addr(self.midi._ptr) if midi else 0], np.int64),
                            np.zeros((period, n_in), np.float32), np.zeros((period, n_out), np.float32),
                            np.full(128, -1, np.int64))
        self.core, self.userdata, self.process = compile_process(engine_bundle, arrays, self.j)
        cb = ffi.cast("JackProcessCallback", self.process.address)
        if lib.jack_set_process_callback(c._ptr, cb, ffi.cast("void *", self.userdata)):
            raise UserError("JACK refused the process callback")
        lib.jack_set_xrun_callback(c._ptr, ffi.cast("JackXRunCallback", _on_xrun.address),
                                   ffi.cast("void *", arrays.ctl.ctypes.data))
        lib.jack_on_info_shutdown(c._ptr, ffi.cast("JackInfoShutdownCallback", _on_shutdown.address),
                                  ffi.cast("void *", jctl.ctypes.data))
        self.latency = self._latency()

    def _latency(self) -> tuple[float, float]:
        """(input, output) latency in seconds: the capture and playback latency JACK reports for
        the device's first ports (the period each way on most drivers)."""
        b = self.backend
        try:
            lib = ctypes.CDLL("libjack.so.0")
            get = lib.jack_port_get_latency_range
            get.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_LatencyRange)]
        except (OSError, AttributeError):
            return b.period / b.rate, b.period / b.rate
        out = []
        for names, mode in ((b.capture, 0), (b.playback if self.outs else [], 1)):   # Capture,
            r = _LatencyRange()                                                   # Playback
            if names:
                p = b.client.get_port_by_name(names[0])
                get(int(b.jack._ffi.cast("intptr_t", p._ptr)), mode, ctypes.byref(r))
            out.append(r.max / b.rate)
        return out[0], out[1]

    @property
    def why_stopped(self) -> str | None:
        if self.j.ctl[SHUTDOWN]:
            return "the JACK server stopped"
        if self.j.ctl[BAD_PERIOD]:
            return (f"the JACK period changed to {int(self.j.ctl[BAD_PERIOD])} frames: restart "
                    f"rtdrums live")
        return None

    @property
    def active(self) -> bool:
        return self.why_stopped is None

    @property
    def cpu_load(self) -> float:
        """The callback's share of the period over its last 64 calls (PortAudio's meaning; JACK's
        own DSP load counts every client)."""
        k = int(self.core_ctl[native.CALLBACKS])
        if k == 0:
            return 0.0
        t = self.timings[(np.arange(max(0, k - 64), k)) & (len(self.timings) - 1)]
        return float(t.mean()) * 1e-9 * self.backend.rate / self.backend.period

    def midi_counts(self) -> tuple[int, int]:
        """(note-ons written, events lost to a full port buffer)."""
        return int(self.j.ctl[MIDI_SENT]), int(self.j.ctl[MIDI_LOST])

    def __enter__(self) -> "JackStream":
        b, cfg = self.backend, self.backend.cfg
        c = b.client
        c.activate()
        try:
            for k, port in enumerate(self.ins):             # as PortAudio: in_k from channel k+1
                if k < len(b.capture):
                    c.connect(b.capture[k], port)
            for k, port in enumerate(self.outs):
                if k < len(b.playback):
                    c.connect(port, b.playback[k])
            target = b.midi_target(cfg.midi_port) if self.midi is not None else None
            if target:
                c.connect(self.midi, target)
        except b.jack.JackError as e:
            self.__exit__()
            raise UserError(f"could not connect the JACK ports of {c.name}: {e}") from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        c = self.backend.client
        if c is None:
            return
        if self.midi is not None and not self.j.ctl[SHUTDOWN]:
            self.j.ctl[ALL_OFF] = 1                         # the next cycle sends the note-offs
            deadline = time.monotonic() + 0.5
            while self.j.ctl[ALL_OFF] != 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            # a client that runs before this one reads them a cycle later: stay connected
            time.sleep(2 * self.backend.period / self.backend.rate)
        self.backend.close()
