"""A live session: engine + audio stream + MIDI + recorder + view, and the audio callback.

The audio callback is compiled (host.native, the default `midi_path` 'native'): PortAudio calls
it without the interpreter, and it hands notes to the MIDI sender's thread. The Python callback
(`LiveSession._process`, midi_path 'callback' or 'thread') does the same per block and stays for
comparison: it mixes the input into a preallocated mono buffer, makes one `engine.process_into`
call, adds the routed sources into the output, updates meters, and hands the events to the MIDI
sender and the block to the recorder ring. Neither allocates (beyond NumPy views in Python),
does I/O, locks or logs. The engine is compiled and warmed before the stream opens.
With --backend jack (host.jackclient) one JACK client of this process replaces PortAudio's and
rtmidi's; its compiled process callback runs the same block code and sends MIDI in the cycle.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

import numpy as np

from ..errors import UserError
from ..events import EVENT_DTYPE
from ..outputs import form_outputs, route_outputs
from ..sampler.build import build_sampler
from ..sampler.voices import render_block
from . import audio, midi, native
from .config import SOURCES, LiveConfig
from .notice import notice_if_slow
from .recorder import Recorder, new_session_folder

COMPILING = ("compiling the audio callback for this machine (once after an install or update: "
             "about a minute)")
TIMING_RING = 1 << 18          # callback durations kept for the statistics (~11 min at 128)
SWITCH_INTERVAL_S = 2e-4       # GIL hand-over: well under the shortest block (64 = 1.3 ms)


def load_engine(preset_name: str, sample_rate: int, block: int, adapt: bool | None = None):
    """Engine for the preset (adaptation on/off, None: as the preset says), compiled and warmed,
    state reset to stream position 0."""
    from ..dsp.adapt import with_adaptation
    from ..engine import Engine
    from ..preset import load_preset
    preset = with_adaptation(load_preset(preset_name), adapt)
    eng = Engine(preset, sample_rate=sample_rate, max_block=block)
    eng.warm()                                   # ends with a reset: stream position 0
    return preset, eng


def _midi_backend(cfg: LiveConfig, hostapi_name: str) -> str:
    if cfg.midi_backend != "auto":
        return cfg.midi_backend
    if "jack" in hostapi_name.lower():
        return "jack"
    if sys.platform.startswith("linux"):
        return "alsa" if midi.backend_problem("alsa") is None else "jack"
    return "jack"


def _use_jack_backend(cfg: LiveConfig) -> bool:
    """--backend jack; auto (the default): JACK's when the host API asked for is JACK and the
    package is there, except where only the PortAudio path serves (effect chains run in the
    Python callback; ALSA MIDI; the hidden MIDI paths the bench compares)."""
    if cfg.backend == "jack":
        return True
    if (cfg.backend != "auto" or cfg.effects or cfg.midi_backend == "alsa"
            or cfg.midi_path != "native"):
        return False
    if not (cfg.host_api and "jack" in cfg.host_api.lower()):
        return False
    from .jackclient import available
    return available()


def _raise_main_thread():
    """Put this (main) thread on the lowest real-time priority where that is allowed.

    The view and housekeeping run here and briefly hold the interpreter lock; if a busy
    machine preempts this thread while it holds the lock, the real-time audio callback waits
    for it. Returns the previous (policy, param) to restore, or None if nothing changed.
    """
    if not hasattr(os, "sched_setscheduler"):
        return None
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return old
    except (OSError, AttributeError):
        return None


class LiveSession:
    """Set up with `prepare()`, then `run()`; `stats()` gives the counters at any time."""

    def __init__(self, cfg: LiveConfig, out=None):
        self.cfg = cfg
        self.out = out or sys.stdout
        self.stop_event = threading.Event()
        self.stop_reason = "stopped"
        self.stream = self.engine = self.midi_out = self.sender = self.recorder = None
        self.jack = self.sd = None          # the native JACK backend (host.jackclient), if used
        self.effects, self.effect_costs = None, {}
        self.stream_latency = (0.0, 0.0)
        self.cpu_load = self.cpu_max = 0.0

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        cfg = self.cfg
        if _use_jack_backend(cfg):          # no PortAudio: it would be a JACK client of its own
            from .jackclient import JackBackend, JackMidiPort
            self.jack = JackBackend(cfg)
            self.in_dev, self.out_dev = self.jack.in_dev, self.jack.out_dev
        else:
            sd = self.sd = audio.load_sounddevice(cfg.client_name)
            self.in_dev = audio.find_device(sd, cfg.input_device, "input", cfg.host_api)
            self.out_dev = audio.find_device(sd, cfg.output_device, "output",
                                             cfg.host_api or self.in_dev["hostapi_name"])
        try:
            if self.jack is not None and cfg.midi:      # MIDI on the client's own port
                target = self.jack.midi_target(cfg.midi_port)
                self.midi_out = JackMidiPort(f"{target or self.jack.client.name + ':midi_out'} "
                                             f"(JACK, in the audio cycle)")
            self._prepare(cfg)
        except BaseException:
            self._close_jack()
            raise

    def _close_jack(self) -> None:
        if self.jack is not None:
            self.jack.close()

    def _prepare(self, cfg: LiveConfig) -> None:
        audio.check_channels(self.in_dev, cfg.input_channels, "input")
        self.route = cfg.with_default_route(self.out_dev["max_output_channels"])
        if "sampler" in self.route and cfg.sampler is None:
            raise UserError("the route plays the sampler, but the settings have no [sampler] "
                            "table: add one (docs/sampler.md) or remove sampler from the route")
        out_chans = sorted({c for chans in self.route.values() for c in chans})
        audio.check_channels(self.out_dev, out_chans, "output")
        self.n_in = max(cfg.input_channels)
        self.n_out = max(out_chans) if out_chans else 0
        if self.jack is None:
            audio.check_stream(self.sd, self.in_dev, self.n_in, self.out_dev, max(self.n_out, 1),
                               cfg.sample_rate, cfg.block)

        if cfg.midi and self.jack is None:   # before the engine: a MIDI problem is reported at once
            self.midi_out = self._open_midi()
        try:
            self.preset, self.engine = load_engine(cfg.preset, cfg.sample_rate, cfg.block, cfg.adapt)
            eng = self.engine
            self.sampler = build_sampler(cfg.sampler, self.preset, cfg.sample_rate, cfg.block)
            self.stem_names, self.drum_names = tuple(eng.stem_names), tuple(eng.drum_names)
            self.stem_latency = int(eng.stem_latency)
            self._alloc()
            self._prepare_effects()
        except BaseException:
            self.close_midi()
            raise
        if self.midi_out is not None and self.jack is None:
            self.sender = midi.NoteSender(self.midi_out.send, cfg.sample_rate,
                                          "thread" if cfg.midi_path == "native" else cfg.midi_path)

        if cfg.record:
            try:
                folder = new_session_folder(os.path.expanduser(cfg.record))
                self.recorder = Recorder(
                    folder, cfg.sample_rate, cfg.block, self.stem_names, self.drum_names,
                    self.stem_latency, cfg.record_format, cfg.record_buffer_s,
                    info={"preset": cfg.preset, "input_device": self.in_dev["name"],
                          "input_channels": cfg.input_channels,
                          "input_mix": "mean of the pair" if len(cfg.input_channels) == 2 else "mono",
                          "output_device": self.out_dev["name"], "route": self.route})
                self.recorder.start()
            except OSError as e:
                self.close_midi()
                raise UserError(f"cannot record to {cfg.record}: {e.strerror or e}") from None

    def _open_midi(self) -> "midi.MidiOutput":
        cfg = self.cfg
        first = _midi_backend(cfg, self.in_dev["hostapi_name"])
        try:
            return midi.MidiOutput(first, cfg.midi_port, f"{cfg.client_name}-midi")
        except UserError as e:
            if cfg.midi_backend != "auto":
                raise
            other = "alsa" if first == "jack" else "jack"
            try:
                return midi.MidiOutput(other, cfg.midi_port, f"{cfg.client_name}-midi")
            except UserError as e2:
                why = [str(x).split("; use")[0] for x in (e, e2)]
                raise UserError(f"no MIDI backend available ({why[0]}; {why[1]}); start a JACK "
                                f"server or load the ALSA sequencer, or use --no-midi") from None

    def _alloc(self) -> None:
        b, cfg = self.cfg.block, self.cfg
        self.mono = np.zeros(b, np.float32)
        self.stems = np.zeros((b, len(self.stem_names)), np.float32)
        self.events = np.zeros(256, EVENT_DTYPE)
        self.absbuf = np.zeros((b, len(SOURCES)), np.float32)
        self.blockpk = np.zeros(len(SOURCES), np.float32)
        self.peaks = np.zeros(len(SOURCES), np.float32)   # of each output (config.SOURCES)
        nd = len(self.drum_names)
        self.hits = np.zeros(nd, np.int64)
        self.last_vel = np.zeros(nd, np.int32)
        self.last_pos = np.full(nd, -(1 << 40), np.int64)
        self.timings = np.zeros(TIMING_RING, np.int64)
        self.waits = np.zeros(TIMING_RING, np.int64)    # entry waits, see native.STREAM
        self.ctl = np.zeros(native.N_CTL, np.int64)     # counters; see the properties below
        self.cb_errors = 0
        self.cb_error: str | None = None
        self.chans = [c - 1 for c in cfg.input_channels]
        idx = {s: i for i, s in enumerate(SOURCES)}
        # (output column of rtdrums.outputs, interface channel 0-based), linear gain of each;
        # config.SOURCES names those columns for a preset of kick, snare and hi-hat
        self.route_array = np.array([(idx[s], c - 1) for s, chans in self.route.items() for c in chans],
                                    np.int64).reshape(-1, 2)
        self.gains = np.array([10 ** (self.cfg.route_gain_db.get(s, 0.0) / 20)
                               for s, chans in self.route.items() for _ in chans], np.float32)
        self.outs = np.zeros((b, len(SOURCES)), np.float32)
        self.total_frames = int(round(cfg.duration * cfg.sample_rate)) if cfg.duration else 0
        self.ctl[native.TOTAL_FRAMES] = self.total_frames

    def _prepare_effects(self) -> None:
        """Build the effect chains, measure each one's cost per block and refuse them if they
        are too slow for the block; they run in the Python callback (docs/effects.md)."""
        if not self.cfg.effects:
            return
        from ..effects import EffectChains
        self.effects = EffectChains(self.cfg.effects, self.cfg.sample_rate, self.cfg.block)
        self.effect_costs = self.effects.costs()
        self.effects.check_budget(self.effect_costs)

    def _core_arrays(self) -> "native.CoreArrays":
        """The compiled callback's state (host.native), sharing the session's arrays."""
        rec, snd = self.recorder, self.sender
        ctl = self.ctl
        ctl[native.N_IN], ctl[native.N_OUT] = self.n_in, self.n_out
        ctl[native.WAKE_FD] = snd._wfd if snd is not None else -1
        ctl[native.REC_ON] = rec is not None
        r = rec.ring if rec is not None else None
        rec_arrays = (r.ctl, r.pos, r.nframes, r.nev, r.ev, r.data) if r is not None else \
            native.dummy_recorder_arrays(1 + len(self.stem_names), self.cfg.block)
        midi_ring = snd.ring if snd is not None else np.zeros((1, 4), np.int64)
        midi_ctl = snd.ctl if snd is not None else np.zeros(4, np.int64)
        return native.CoreArrays(
            ctl, np.array(self.chans, np.int64),
            self.route_array, self.mono, self.stems, self.events,
            self.peaks, self.hits, self.last_vel, self.last_pos, self.timings, self.waits,
            midi_ring, midi_ctl,
            *(np.asarray(x) for x in rec_arrays), self.gains, self.outs, self.sampler)

    def _native_callback(self):
        """The compiled callback (host.native) with its state; (cffi function pointer, userData)."""
        sd = self.sd
        self._native = native.compile_callback(self.engine._bundle, self._core_arrays())
        return (sd._ffi.cast("PaStreamCallback *", self._native.cfunc.address),
                sd._ffi.cast("void *", self._native.userdata))

    def _counter(i: int):
        return property(lambda self: int(self.ctl[i]),
                        lambda self, v: self.ctl.__setitem__(i, v))

    pos = _counter(native.POS)
    callbacks = _counter(native.CALLBACKS)
    max_ns = _counter(native.MAX_NS)
    in_overflow = _counter(native.IN_OVERFLOW)
    out_underflow = _counter(native.OUT_UNDERFLOW)
    delay_sum = _counter(native.DELAY_SUM)         # sum of emitted - onset (samples)
    del _counter

    # -- the audio callback --------------------------------------------------------------------
    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        t0 = time.perf_counter_ns()
        wait = int(1e9 * (self.stream.time - time_info.currentTime)) if self.ctl[native.STREAM] \
            else 0
        if status:
            if status.input_overflow:
                self.in_overflow += 1
            if status.output_underflow:
                self.out_underflow += 1
        try:
            b = self.cfg.block
            if frames == b:
                self._process(indata, outdata, 0, frames)
            else:                                       # never with a fixed blocksize; be safe
                for off in range(0, frames, b):
                    self._process(indata, outdata, off, min(b, frames - off))
        except Exception as e:                          # keep the stage alive; report later
            self.cb_errors += 1
            if self.cb_error is None:
                self.cb_error = f"{type(e).__name__}: {e}"
            if outdata is not None:
                outdata.fill(0)
        dt = time.perf_counter_ns() - t0
        self.timings[self.callbacks & (TIMING_RING - 1)] = dt
        self.waits[self.callbacks & (TIMING_RING - 1)] = wait
        if dt > self.max_ns:
            self.max_ns = dt
        self.callbacks += 1
        if self.total_frames and self.pos >= self.total_frames:
            self.stop_reason = "duration reached"
            self.stop_event.set()

    def _process(self, indata, outdata, off: int, n: int) -> None:
        b = self.cfg.block
        full = n == b
        mono = self.mono if full else self.mono[:n]
        stems = self.stems if full else self.stems[:n]
        x = indata if (off == 0 and full) else indata[off:off + n]
        if len(self.chans) == 2:
            np.add(x[:, self.chans[0]], x[:, self.chans[1]], out=mono)
            mono *= 0.5
        else:
            mono[:] = x[:, self.chans[0]]
        ne = self.engine.process_into(mono, stems, self.events)
        render_block(self.sampler, self.events, ne, n)
        outs = self.outs if full else self.outs[:n]
        form_outputs(mono, stems, self.sampler.smp, self.sampler.keep, outs, n)
        if self.effects is not None:          # the chains (the recorder keeps the engine's own stems)
            self.effects.apply(outs, n)
        if outdata is not None:
            o = outdata if (off == 0 and full) else outdata[off:off + n]
            route_outputs(outs, self.route_array, self.gains, o, n)
        a = self.absbuf if full else self.absbuf[:n]
        np.abs(outs, out=a)
        np.max(a, axis=0, out=self.blockpk)
        np.maximum(self.peaks, self.blockpk, out=self.peaks)
        pos = self.pos
        if self.sender is not None:
            self.sender.on_block(self.events, ne, pos + n)
        if self.recorder is not None and not (self.total_frames and pos >= self.total_frames):
            self.recorder.push(mono, stems, self.events, ne, pos)
        for i in range(ne):
            e = self.events[i]
            d = e["drum"]
            self.hits[d] += 1
            self.last_vel[d] = e["velocity"]
            self.last_pos[d] = pos + n
            self.delay_sum += int(e["emitted"] - e["onset"])
        self.pos = pos + n

    # -- run -----------------------------------------------------------------------------------
    def open_stream(self):
        cfg, sd = self.cfg, self.sd
        kw = dict(samplerate=cfg.sample_rate, blocksize=cfg.block, dtype="float32",
                  latency="low")
        if self.jack is not None:
            with notice_if_slow(COMPILING):
                return self.jack.stream(self.engine._bundle, self._core_arrays(), self.n_in,
                                        self.n_out, cfg.midi)
        try:
            if cfg.midi_path == "native":
                with notice_if_slow(COMPILING):
                    fn, user = self._native_callback()
                dev = (self.in_dev["index"], self.out_dev["index"]) if self.n_out else \
                    self.in_dev["index"]
                ch = (self.n_in, self.n_out) if self.n_out else self.n_in
                return sd._StreamBase("duplex" if self.n_out else "input", device=dev,
                                      channels=ch, callback=fn, userdata=user, **kw)
            if self.n_out:
                return sd.Stream(device=(self.in_dev["index"], self.out_dev["index"]),
                                 channels=(self.n_in, self.n_out), callback=self._callback, **kw)
            return sd.InputStream(device=self.in_dev["index"], channels=self.n_in,
                                  callback=lambda i, f, t, s: self._callback(i, None, f, t, s),
                                  **kw)
        except sd.PortAudioError as e:
            raise UserError(f"could not open the audio stream on {self.in_dev['name']} / "
                            f"{self.out_dev['name']}: {e}") from None

    def _on_signal(self, signum, frame) -> None:
        self.stop_reason = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}.get(
            signum, signal.Signals(signum).name)
        self.stop_event.set()

    def run(self, view=None) -> dict:
        """Stream until Ctrl-C, SIGTERM or the duration; then close everything. Returns stats."""
        # Another Python thread (recorder, view) may hold the GIL for up to the switch interval
        # before the audio callback gets it: 5 ms by default, longer than a 128-sample block.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # A full garbage collection walks every object (numba, numpy, scipy: hundreds of
        # thousands) and would run in whichever thread allocates, possibly the audio callback.
        # Everything alive now is frozen out of collection and the collector is off while
        # streaming: the callback makes only short-lived, acyclic objects freed by refcount.
        gc.collect()
        gc.freeze()
        gc.disable()
        main_policy = _raise_main_thread()
        old = {}
        sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        if threading.current_thread() is threading.main_thread():
            for s in sigs:
                old[s] = signal.signal(s, self._on_signal)
        try:
            self.stream = self.open_stream()
            pa_jack = self.jack is None and "jack" in self.in_dev["hostapi_name"].lower()
            if pa_jack:                                          # Pa_GetStreamTime: JACK's
                self.ctl[native.STREAM] = int(self.sd._ffi.cast("intptr_t", self.stream._ptr))
            self.stream_latency = tuple(self.stream.latency) if self.n_out or self.jack else \
                (float(self.stream.latency), 0.0)
            with self.stream:
                if view:
                    view.started()
                while not self.stop_event.wait(view.interval if view else 0.1):
                    if self.ctl[native.STOP]:
                        self.stop_reason = "duration reached"
                        break
                    self._sample_cpu()
                    if self.recorder is not None:
                        self.recorder.poll()
                    if view:
                        view.update()
                    if not self.stream.active:
                        self.stop_reason = getattr(self.stream, "why_stopped", None) or \
                            "the audio stream stopped"
                        break
                self._sample_cpu()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            sys.setswitchinterval(switch)
            gc.enable()
            if main_policy is not None:
                try:
                    os.sched_setscheduler(0, *main_policy)
                except OSError:
                    pass
            self.close_midi()
            self._close_jack()
            if self.recorder is not None:
                self.recorder.stop(extra={"stats": self.stats()})
        return self.stats()

    def close_midi(self) -> None:
        if self.sender is not None:
            self.sender.close()
        if self.midi_out is not None:
            self.midi_out.close()
            self.midi_out = None

    def _sample_cpu(self) -> None:
        try:
            self.cpu_load = float(self.stream.cpu_load)
        except Exception:
            return
        self.cpu_max = max(self.cpu_max, self.cpu_load)

    # -- numbers -------------------------------------------------------------------------------
    def latency(self) -> dict:
        """Latencies in ms: stems + block + interface (PortAudio's reported in + out)."""
        sr = self.cfg.sample_rate
        lin, lout = self.stream_latency
        stem = 1e3 * self.stem_latency / sr
        block = 1e3 * self.cfg.block / sr
        iface = 1e3 * (lin + lout)
        nh = int(self.hits.sum())
        trig = 1e3 * self.delay_sum / nh / sr if nh else None
        return {"stems_ms": round(stem, 3), "block_ms": round(block, 3),
                "interface_ms": round(iface, 3), "input_ms": round(1e3 * lin, 3),
                "output_ms": round(1e3 * lout, 3), "total_ms": round(stem + block + iface, 3),
                "trigger_detect_ms": None if trig is None else round(trig, 3)}

    def callback_times(self, recent: int | None = None) -> dict:
        """Median, p99 and max of the callback's duration (over the last `recent` blocks), and on
        JACK of its entry wait: how long after PortAudio stamped the cycle the callback began."""
        n = min(self.callbacks, TIMING_RING)
        if n == 0:
            return {"callbacks": 0}
        if recent and recent < n:
            i = self.callbacks & (TIMING_RING - 1)
            idx, n = (np.arange(i - recent, i)) & (TIMING_RING - 1), recent
        else:
            idx = slice(0, n)
        t = np.sort(self.timings[idx]) / 1e6
        out = {"callbacks": self.callbacks, "median_ms": round(float(t[n // 2]), 4),
               "p99_ms": round(float(t[min(n - 1, int(0.99 * n))]), 4),
               "max_ms": round(self.max_ns / 1e6, 4),
               "budget_ms": round(1e3 * (self.jack.period if self.jack else self.cfg.block)
                                  / self.cfg.sample_rate, 4)}
        if self.ctl[native.STREAM] or self.jack is not None:
            # JACK backend: from the start of the JACK cycle (clients before it included)
            key = "entry_wait" if self.jack is None else "cycle_start_to_entry"
            w = np.sort(self.waits[idx]) / 1e6
            out.update({f"{key}_median_ms": round(float(w[n // 2]), 4),
                        f"{key}_p99_ms": round(float(w[min(n - 1, int(0.99 * n))]), 4),
                        f"{key}_max_ms": round(float(w[-1]), 4)})
        return out

    def _midi_counts(self) -> tuple[int, int]:
        """(note-ons sent, send errors or lost events)."""
        if self.sender is not None:
            return self.sender.sent, self.sender.errors
        if self.jack is not None and hasattr(self.stream, "midi_counts"):
            return self.stream.midi_counts()
        return 0, 0

    def stats(self, recent: int | None = None) -> dict:
        rec = self.recorder
        sent, errors = self._midi_counts()
        return {
            "seconds": round(self.pos / self.cfg.sample_rate, 3), "frames": self.pos,
            "stop_reason": self.stop_reason,
            "sample_rate": self.cfg.sample_rate, "block": self.cfg.block,
            "hits": {d: int(h) for d, h in zip(self.drum_names, self.hits)},
            "backend": "jack" if self.jack is not None else "portaudio",
            "midi_sent": sent, "midi_errors": errors,
            "midi_path": self.cfg.midi_path if self.sender else
            ("jack" if self.jack is not None and self.cfg.midi else None),
            "midi_handoff": self.sender.handoff_stats() if self.sender else None,
            "input_overflows": self.in_overflow, "output_underflows": self.out_underflow,
            "cpu_load": round(self.cpu_load, 4), "cpu_load_max": round(self.cpu_max, 4),
            "callback": self.callback_times(recent), "callback_errors": self.cb_errors,
            "callback_error": self.cb_error,
            "latency": self.latency(),
            "effects": None if self.effects is None else {
                o: {"chain": c, "cost_us": round(self.effect_costs.get(o, 0.0), 2)}
                for o, c in self.effects.names().items()},
            "recording": None if rec is None else {
                "folder": str(rec.folder), "seconds": round(rec.frames / self.cfg.sample_rate, 3),
                "triggers": rec.events, "dropped_blocks": rec.dropped, "error": rec.error},
        }
