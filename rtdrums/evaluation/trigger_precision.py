"""The learned trigger's merged first layer stored in float32, int16 and int8 (docs/lean-engine.md).

    python -m rtdrums.evaluation.trigger_precision [--kit ForzeeStereo] [--grooves 3] [--seconds 20]

The onset model's features of validation grooves rendered with an allowed kit (the reference
kernels' analysis, Engine.analyse), run through the shipped default's ensemble in float64
(onset_model.ensemble_outputs, the reference) and through ensemble_outputs_merged with each
storage: the largest and 99th-percentile difference of the output logits, the frames whose
trigger decision (logit over its threshold) differs, and the CPU time per frame of each kernel
(thread CPU time, median of five runs of 3000 frames).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from ..dsp import onset_model as om
from ..engine import Engine
from ..preset import load_preset
from ..tables import feature_centre
from ..training.kits import load_kit
from ..training.render import render_groove, shipped_grooves
from .protocol import KITS_ROOT

STORAGES = {"float32": (np.float32, False), "int16": (np.int16, True), "int16, not centred": (np.int16, False),
            "int8": (np.int8, True)}


@njit(cache=True)
def _run_merged(feats, w, s, c, b, w2, b2, hidden, out):
    for i in range(feats.shape[0]):
        om.ensemble_outputs_merged(feats[i], w, s, c, b, w2, b2, hidden, out[i])


@njit(cache=True)
def _run_reference(feats, w1, b1, w2, b2, hidden, out):
    for i in range(feats.shape[0]):
        om.ensemble_outputs(feats[i], w1, b1, w2, b2, hidden, out[i])


def compare(kit: str, grooves: int, seconds: float, preset: str = "default") -> list[dict]:
    p = load_preset(preset)
    engine = Engine(p, 48000)
    T, m = engine.tables, p.onset_model
    feats = np.concatenate([engine.analyse(render_groove(g, load_kit(KITS_ROOT / kit), 48000, max_seconds=seconds).mix,
                                           m.band_hz, m.short_hz)[1] for g in shipped_grooves("validation")[:grooves]])
    feats = feats.astype(np.float64)
    D = len(T.m_logit)
    ref = np.zeros((len(feats), T.m_b2.shape[1]))
    _run_reference(feats, T.m_w1, T.m_b1, T.m_w2, T.m_b2, np.zeros(T.m_b1.size), ref)
    on_ref = ref[:, :D] > T.m_logit
    timed = feats[:3000]
    rows = []
    for name, (dtype, centred) in STORAGES.items():
        w, s, c, b = om.merged_first_layer(T.m_w1, T.m_b1, feature_centre(p) if centred else None, dtype)
        hidden, out = np.zeros(len(b), np.float32), np.zeros_like(ref)
        _run_merged(feats, w, s, c, b, T.m_w2, T.m_b2, hidden, out)
        d = np.abs(out - ref)
        d = d[np.isfinite(d)]
        cpu = []
        for _ in range(5):
            t = time.thread_time()
            _run_merged(timed, w, s, c, b, T.m_w2, T.m_b2, hidden, out[:len(timed)])
            cpu.append((time.thread_time() - t) / len(timed) * 1e6)
        rows.append({"storage": name, "bytes": w.nbytes, "max": float(d.max()), "p99": float(np.percentile(d, 99)),
                     "differ": int(np.sum((out[:, :D] > T.m_logit) != on_ref)), "cpu_us": float(np.median(cpu))})
    cpu = []
    for _ in range(5):
        t = time.thread_time()
        _run_reference(timed, T.m_w1, T.m_b1, T.m_w2, T.m_b2, np.zeros(T.m_b1.size), ref[:len(timed)])
        cpu.append((time.thread_time() - t) / len(timed) * 1e6)
    rows.append({"storage": "float64 (reference, K layers)", "bytes": T.m_w1.nbytes, "max": 0.0, "p99": 0.0,
                 "differ": 0, "cpu_us": float(np.median(cpu))})
    return rows, len(feats), int(on_ref.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="ForzeeStereo")
    ap.add_argument("--grooves", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    rows, frames, on = compare(args.kit, args.grooves, args.seconds)
    print(f"{frames} frames ({on} decisions over threshold in float64)\n")
    print("| first layer | size | logit difference max | p99 | decisions that differ | CPU per frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['storage']} | {r['bytes'] / 1024:.0f} KiB | {r['max']:.2g} | {r['p99']:.2g} | {r['differ']} | "
              f"{r['cpu_us']:.1f} us |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
