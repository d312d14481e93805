"""Running the streaming engine over a whole signal, block by block, exactly as live."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .engine import Engine
from .events import EVENT_DTYPE
from .outputs import form_outputs, output_names
from .sampler.voices import render_block

DEFAULT_BLOCK = 128
CHUNK = 16384             # samples per engine call when run_blocks runs no sampler


class Separation(NamedTuple):
    stems: np.ndarray        # (n, n_stems) float32, aligned to the input (stem latency removed)
    events: np.ndarray       # EVENT_DTYPE, in stream samples of the input
    names: tuple[str, ...]   # stem names
    outputs: np.ndarray | None = None   # with a sampler or effect chains: every output
                                        # (rtdrums.outputs, after its chain) of x as live plays it
                                        # (not moved by the stem latency)


def run_blocks(engine: Engine, x: np.ndarray, block: int = DEFAULT_BLOCK,
               progress: Callable[[int], None] | None = None, sampler=None,
               outputs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feed x (mono) through the engine in blocks; returns raw (stems, events) as streamed.
    With a sampler (rtdrums.sampler, max block >= block) its voices play as live and every
    output is written into outputs (len(x), outputs) float32."""
    x = np.ascontiguousarray(x, np.float32)
    stems = np.zeros((len(x), len(engine.stem_names)), np.float32)
    if sampler is None:
        return stems, _run_chunks(engine, x, block, stems, progress)
    events = []
    for start in range(0, len(x), block):
        chunk = x[start:start + block]
        out, ev = engine.process(chunk)
        stems[start:start + len(chunk)] = out
        if sampler is not None:
            render_block(sampler, ev, len(ev), len(chunk))
            form_outputs(chunk, out, sampler.smp, sampler.keep, outputs[start:start + len(chunk)],
                         len(chunk))
        if len(ev):
            events.append(ev.copy())
        if progress:
            progress(len(chunk))
    return stems, (np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE))


def _run_chunks(engine: Engine, x: np.ndarray, block: int, stems: np.ndarray,
                progress: Callable[[int], None] | None) -> np.ndarray:
    """run_blocks without a sampler: x in chunks of whole blocks (CHUNK samples), each one
    compiled call straight into stems, i.e. a hundred times fewer calls and copies holding the
    GIL between the GIL-free block calls (rtdrums separate on many files runs files in threads).
    The same stems and events as calls of `block` samples: the engine's output does not depend
    on how its input is cut, and with Engine.emit_block each call reports every event's
    `emitted` as calls of `block` samples do."""
    chunk = max(block, CHUNK // block * block)
    room = (chunk // engine.settings.hop + 1) * len(engine.drum_names) + 16    # a note per drum and frame: none dropped
    buf = np.zeros(room, EVENT_DTYPE)
    events = []
    was, engine.emit_block = engine.emit_block, block
    try:
        for start in range(0, len(x), chunk):
            n = min(chunk, len(x) - start)
            k = engine.process_into(x[start:start + n], stems[start:start + n], buf)
            if k:
                events.append(buf[:k].copy())
            if progress:
                progress(n)
    finally:
        engine.emit_block = was
    return np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)


def activation_trace(engine: Engine, x: np.ndarray, components: bool = False):
    """Activations after every frame of x (frames x (drums + residual)), from a fresh start (the
    engine is left reset).

    With components=True, returns (trace, h): h holds every component's activation per frame.
    """
    h, _ = engine.analyse(x)
    g = engine.tables.group_start
    trace = np.stack([h[:, g[i]:g[i + 1]].sum(axis=1) for i in range(len(g) - 1)], axis=1)
    return (trace, h) if components else trace


def separate(engine: Engine, x: np.ndarray, block: int = DEFAULT_BLOCK,
             progress: Callable[[int], None] | None = None, sampler=None, effects=None) -> Separation:
    """Stems aligned with x (the engine is flushed with stem_latency zeros) and all events; with a
    sampler (rtdrums.sampler.build) or effect chains (rtdrums.effects.EffectChains at `block`)
    also every output as live plays it."""
    lat = engine.stem_latency
    padded = np.concatenate([np.asarray(x, np.float32), np.zeros(lat, np.float32)])
    outputs = None
    if sampler is not None or effects is not None:
        if sampler is None:
            from .sampler.build import build_sampler
            sampler = build_sampler(None, engine.preset, engine.settings.sample_rate, block)
        outputs = np.zeros((len(padded), len(output_names(engine.stem_names))), np.float32)
    stems, events = run_blocks(engine, padded, block, progress, sampler, outputs)
    events = events[events["onset"] < len(x)]
    if effects is not None:
        effects.run(outputs)
    return Separation(stems[lat:], events, engine.stem_names,
                      None if outputs is None else outputs[:len(x)])
