"""Evaluating the engine and the baselines: every number of a run in one dict.

evaluate_kit renders each groove with the kit (exact stems and onsets), runs the engine block by
block exactly as live (rtdrums.offline.separate) and the baselines on the same mixture, and pools
the scores: onset counts and latencies over all grooves, SDR and SI-SDR as means over grooves.
evaluate_audio scores the engine (and the naive trigger) on an annotated recording.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine import Engine
from ..offline import activation_trace as frame_activations, separate
from ..preset import Preset
from . import baselines, causes, metrics

DRUMS = ("kick", "snare", "hihat")
BASELINES = ("nmf_offline", "oracle_masks", "libnmfd_nmfd", "band_trigger")
FIGURE_SECONDS = 8.0
# reference velocity bands for recall by loudness: ghost notes, soft, medium, loud
VELOCITY_BANDS = ((1, 31), (32, 63), (64, 95), (96, 127))


class Tally:
    """Scores of one method on one drum, accumulated over files."""

    def __init__(self):
        self.counts = {w: np.zeros(3, np.int64) for w in metrics.WINDOWS}
        self.onset_files = 0
        self.by_velocity = np.zeros((len(VELOCITY_BANDS), 2), np.int64)   # (reference, matched)
        self.false_causes: dict[str, int] | None = None      # set once a file had known sources
        self.miss_causes: dict[str, int] | None = None
        self.latency: list[float] = []
        self.velocity: list[tuple[float, float]] = []
        self.sdr: list[float | None] = []
        self.si_sdr: list[float | None] = []

    def add_onsets(self, ref, est, emitted=None, ref_vel=None, est_vel=None,
                   drum: str | None = None, sources: causes.Sources | None = None) -> dict:
        """Count one file's onsets; latency, velocity pairs and recall by reference velocity from
        the hits matched at 50 ms; with the drum's name and the file's sources, the cause of each
        false trigger and missed hit (rtdrums.evaluation.causes). Returns the file's scores at 50 ms."""
        self.onset_files += 1
        ref = np.asarray(ref, float)
        order = np.argsort(est)
        est = np.asarray(est, float)[order]
        for w in metrics.WINDOWS:
            pairs = metrics.match(ref, est, w)
            self.counts[w] += [len(ref), len(est), len(pairs)]
            if w == metrics.WINDOWS[0]:
                scores, matched = metrics.counts_to_prf(len(ref), len(est), len(pairs)), pairs
        i, j = matched[:, 0], matched[:, 1]
        if emitted is not None:
            self.latency += list((np.asarray(emitted, float)[order][j] - ref[i]) * 1e3)
        if ref_vel is not None:
            ref_vel = np.asarray(ref_vel, float)
            hit = np.zeros(len(ref), bool)
            hit[i] = True
            for b, (lo, hi) in enumerate(VELOCITY_BANDS):
                band = (ref_vel >= lo) & (ref_vel <= hi)
                self.by_velocity[b] += [band.sum(), (band & hit).sum()]
            if est_vel is not None:
                est_vel = np.asarray(est_vel, float)[order]
                self.velocity += list(zip(ref_vel[i], est_vel[j]))
        if sources is not None:
            self._add_causes(drum, ref, est, i, j, sources)
        return scores

    def _add_causes(self, drum, ref, est, i, j, sources) -> None:
        false = np.delete(est, j)
        fc = causes.count((causes.false_trigger_cause(drum, t, sources) for t in false), causes.FALSE_CAUSES)
        self.false_causes = {k: (self.false_causes or {}).get(k, 0) + n for k, n in fc.items()}
        if sources.stems is not None:
            missed = np.delete(ref, i)
            mc = causes.count((causes.miss_cause(drum, t, sources) for t in missed), causes.MISS_CAUSES)
            self.miss_causes = {k: (self.miss_causes or {}).get(k, 0) + n for k, n in mc.items()}

    def add_stem(self, ref, est) -> tuple[float | None, float | None]:
        sdr, si = metrics.sdr(ref, est), metrics.si_sdr(ref, est)
        self.sdr.append(sdr)
        self.si_sdr.append(si)
        return sdr, si

    def summary(self) -> dict:
        """Pooled scores; onset scores are None for a method that finds no onsets (stems only)."""
        out = {}
        for w, (n_ref, n_est, n_match) in self.counts.items():
            prf = metrics.counts_to_prf(n_ref, n_est, n_match)
            key = f"{round(w * 1000)}ms"
            if not self.onset_files:
                prf = dict.fromkeys(prf)
            out[f"f_{key}"], out[f"p_{key}"], out[f"r_{key}"] = prf["f"], prf["precision"], prf["recall"]
            out["ref"], out[f"matched_{key}"], out["est"] = prf["ref"], prf["matched"], prf["est"]
        out["recall_by_velocity"] = {f"{lo}-{hi}": {"ref": int(n), "matched": int(k), "missed": int(n - k),
                                                    "recall": k / n if n else None}
                                     for (lo, hi), (n, k) in zip(VELOCITY_BANDS, self.by_velocity)}
        out["latency_ms"] = metrics.latency_summary(self.latency) if self.latency else None
        out["false_by_cause"], out["missed_by_cause"] = self.false_causes, self.miss_causes
        v = np.array(self.velocity).reshape(-1, 2)
        out["velocity_r"] = metrics.correlation(v[:, 0], v[:, 1]) if len(v) else None
        out["sdr_db"] = metrics.summarise(self.sdr)
        out["si_sdr_db"] = metrics.summarise(self.si_sdr)
        return out


class MethodTally:
    def __init__(self, drums=DRUMS):
        self.drums = {d: Tally() for d in drums}
        self.seconds = 0.0
        self.audio_seconds = 0.0

    def summary(self) -> dict:
        a = self.audio_seconds
        return {"drums": {d: t.summary() for d, t in self.drums.items()},
                "seconds": self.seconds, "audio_seconds": a,
                "seconds_per_30s_audio": self.seconds / a * 30 if a else None}


def _events_by_drum(events, names, sample_rate):
    out = {}
    for d, name in enumerate(names):
        e = events[events["drum"] == d]
        out[name] = (e["onset"] / sample_rate, e["emitted"] / sample_rate, e["velocity"].astype(float))
    return out


def activation_trace(engine: Engine, x: np.ndarray, seconds: float = FIGURE_SECONDS) -> np.ndarray:
    """Per-drum activations (frames x drums) of the first `seconds` of x, one frame per hop."""
    trace = frame_activations(engine, x[:int(seconds * engine.sample_rate)])
    return trace[:, :len(engine.drum_names)]


def _kit_hits_44k(kit) -> dict[str, list[np.ndarray]]:
    roles = {"kick": ("kick",), "snare": ("snare",), "hihat": ("hihat_closed",)}
    return {d: [np.asarray(a, np.float32) for r in rs for a, _ in kit.hits(r, baselines.LIBNMFD_RATE)]
            for d, rs in roles.items()}


def evaluate_kit(kit_dir: str | Path, preset: Preset, grooves: list[Path], seconds: float | None = 30.0,
                 sample_rate: int = 48000, block: int = 128, methods: tuple[str, ...] = BASELINES,
                 progress: Callable[[str], None] | None = None, rooms: bool = False) -> tuple[dict, dict]:
    """Scores of the engine and the baselines on renders of grooves with a kit.

    With `rooms`, each render is a recording in a simulated room (rtdrums.training.rooms.vary with seed
    EVAL_SEED + groove index, disjoint from the seeds training uses). Returns (results,
    figure_data). progress(step) is called after each step; there are steps_per_groove(methods)
    steps per groove.
    """
    from ..training.kits import load_kit
    from ..training.render import render_groove
    from ..training.rooms import EVAL_SEED, vary

    def rendered(groove, gi, rate):
        r = render_groove(groove, kit, rate, max_seconds=seconds)
        return vary(r, EVAL_SEED + gi) if rooms else r

    kit = load_kit(kit_dir)
    engine = Engine(preset, sample_rate, max_block=max(block, 8192))
    engine.warm()
    names = engine.drum_names
    tallies = {m: MethodTally() for m in ("rtdrums",) + tuple(methods)}
    per_groove, figure = [], {}
    nmfd_W = baselines.libnmfd_templates(_kit_hits_44k(kit)) if "libnmfd_nmfd" in methods else None
    tick = progress or (lambda step: None)
    for gi, groove in enumerate(grooves):
        r = rendered(groove, gi, sample_rate)
        row = {"groove": Path(groove).name, "audio_seconds": len(r.mix) / sample_rate}
        engine.reset()
        t0 = time.perf_counter()
        sep = separate(engine, r.mix, block)
        tallies["rtdrums"].seconds += time.perf_counter() - t0
        ev = _events_by_drum(sep.events, names, sample_rate)
        src = causes.Sources.from_render(r)
        row["rtdrums"] = {}
        for d in DRUMS:
            t = tallies["rtdrums"].drums[d]
            est, emitted, vel = ev.get(d, (np.zeros(0),) * 3)
            f = t.add_onsets(r.times(d), est, emitted, r.velocities(d), vel, d, src)["f"]
            sdr, si = t.add_stem(r.stems[d], sep.stems[:, names.index(d)]) if d in names else (None, None)
            row["rtdrums"][d] = {"f_50ms": f, "sdr_db": sdr, "si_sdr_db": si}
        tick("rtdrums")
        if gi == 0:
            figure = {"groove": row["groove"], "frame_rate": sample_rate / engine.settings.hop,
                      "names": names, "activations": activation_trace(engine, r.mix),
                      "true": {d: r.times(d) for d in DRUMS}, "detected": {d: ev[d][0] for d in ev}}
        for m in methods:
            x, ref = r.mix, r
            if m == "nmf_offline":
                res = baselines.offline_nmf(r.mix, engine)
            elif m == "oracle_masks":
                res = baselines.oracle_masks(r.stems, engine)
            elif m == "libnmfd_nmfd":
                ref = rendered(groove, gi, baselines.LIBNMFD_RATE)
                x = ref.mix
                res = baselines.libnmfd_nmfd(x, nmfd_W)
            else:
                res = baselines.band_trigger(r.mix, sample_rate, block)
            tallies[m].seconds += res.seconds
            tallies[m].audio_seconds += len(x) / ref.sample_rate
            row[m] = {}
            for d in DRUMS:
                t = tallies[m].drums[d]
                f = None
                if res.onsets is not None:
                    f = t.add_onsets(ref.times(d), res.onsets[d], res.emitted[d] if res.emitted else None,
                                     ref.velocities(d), drum=d,
                                     sources=src if ref is r else causes.Sources.from_render(ref))["f"]
                sdr, si = t.add_stem(ref.stems[d], res.stems[d]) if res.stems else (None, None)
                row[m][d] = {"f_50ms": f, "sdr_db": sdr, "si_sdr_db": si}
            tick(m)
        tallies["rtdrums"].audio_seconds += len(r.mix) / sample_rate
        per_groove.append(row)
    figure["latency_ms"] = {d: list(tallies["rtdrums"].drums[d].latency) for d in DRUMS}
    s = engine.settings
    results = {
        "kit": kit.name, "kit_dir": str(kit_dir), "preset": _preset_info(preset),
        "kit_in_training": kit.name in _preset_info(preset)["trained_on"],
        "sample_rate": sample_rate, "block": block, "seconds_per_groove": seconds, "rooms": rooms,
        "stft": {"n_fft": s.n_fft, "hop": s.hop, "synthesis": s.synthesis, "taper": s.taper},
        "stem_latency_ms": engine.stem_latency / sample_rate * 1000,
        "block_latency_ms": block / sample_rate * 1000,
        "grooves": [Path(g).name for g in grooves],
        "methods": {m: t.summary() for m, t in tallies.items()}, "per_groove": per_groove,
    }
    return results, figure


def steps_per_groove(methods: tuple[str, ...] = BASELINES) -> int:
    return 1 + len(methods)


def _preset_info(preset: Preset) -> dict:
    from .protocol import training_kits

    return {"name": preset.name, "provenance": preset.provenance, "trained_on": training_kits(preset),
            "templates": int(preset.W.shape[1]), "sample_rate": preset.stft.sample_rate}


def evaluate_audio(x: np.ndarray, sample_rate: int, annotations: dict[str, np.ndarray],
                   preset: Preset, block: int = 128, name: str = "") -> tuple[dict, dict]:
    """Onset scores and latency of the engine and the naive trigger on an annotated recording."""
    engine = Engine(preset, sample_rate, max_block=max(block, 8192))
    engine.warm()
    drums = tuple(d for d in DRUMS if d in annotations)
    tallies = {"rtdrums": MethodTally(drums), "band_trigger": MethodTally(drums)}
    t0 = time.perf_counter()
    sep = separate(engine, x, block)
    tallies["rtdrums"].seconds = time.perf_counter() - t0
    ev = _events_by_drum(sep.events, engine.drum_names, sample_rate)
    bt = baselines.band_trigger(x, sample_rate, block)
    tallies["band_trigger"].seconds = bt.seconds
    src = causes.Sources.from_annotations(annotations)
    for d in drums:
        est, emitted, _ = ev.get(d, (np.zeros(0),) * 3)
        tallies["rtdrums"].drums[d].add_onsets(annotations[d], est, emitted, drum=d, sources=src)
        tallies["band_trigger"].drums[d].add_onsets(annotations[d], bt.onsets[d], bt.emitted[d], drum=d, sources=src)
    for t in tallies.values():
        t.audio_seconds = len(x) / sample_rate
    results = {"audio": name, "preset": _preset_info(preset), "sample_rate": sample_rate,
               "block": block, "stem_latency_ms": engine.stem_latency / sample_rate * 1000,
               "block_latency_ms": block / sample_rate * 1000,
               "methods": {m: t.summary() for m, t in tallies.items()}}
    figure = {"groove": name, "frame_rate": sample_rate / engine.settings.hop, "names": engine.drum_names,
              "activations": activation_trace(engine, x), "true": annotations,
              "detected": {d: ev[d][0] for d in ev},
              "latency_ms": {d: list(tallies["rtdrums"].drums[d].latency) for d in drums}}
    return results, figure
