"""Writing a run's results: results.md (tables), results.json (every number), PNG figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import causes

METHOD_TITLES = {"rtdrums": "rtdrums (causal, live)", "nmf_offline": "NMF offline, same templates",
                 "oracle_masks": "masks from the true stems",
                 "libnmfd_nmfd": "libnmfd NMFD (drum demo)", "band_trigger": "band-energy trigger"}
LATENCY_STATS = ("median", "p95", "p99", "max")


def fmt(v, digits: int = 2) -> str:
    """A number for a table cell: '-' for None/NaN, fixed digits otherwise."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:.{digits}f}"


def method_table(results: dict) -> str:
    """One row per method and drum: onset P/R/F, latency, velocity r, SDR, SI-SDR."""
    head = ("| method | drum | F 50 ms | P | R | F 20 ms | latency median / p95 / p99 / max (ms) | "
            "velocity r | SDR (dB) | SI-SDR (dB) |")
    lines = [head, "|" + "---|" * 10]
    for m, res in results["methods"].items():
        for d, s in res["drums"].items():
            lat = s.get("latency_ms")
            lat_s = " / ".join(fmt(lat.get(k), 1) for k in LATENCY_STATS) if lat else "-"
            lines.append(f"| {METHOD_TITLES.get(m, m)} | {d} | {fmt(s['f_50ms'])} | {fmt(s['p_50ms'])} | "
                         f"{fmt(s['r_50ms'])} | {fmt(s['f_20ms'])} | {lat_s} | {fmt(s['velocity_r'])} | "
                         f"{fmt(s['sdr_db'], 1)} | {fmt(s['si_sdr_db'], 1)} |")
    return "\n".join(lines)


def velocity_table(results: dict) -> str:
    """Recall at 50 ms and misses by the reference hits' MIDI velocity, per method with onsets and drum."""
    rows = [(m, d, s["recall_by_velocity"]) for m, res in results["methods"].items()
            for d, s in res["drums"].items()
            if s.get("f_50ms") is not None and any(b["ref"] for b in s.get("recall_by_velocity", {}).values())]
    if not rows:
        return ""
    bands = list(rows[0][2])
    lines = ["| method | drum | " + " | ".join(f"velocity {b}: recall (missed / hits)" for b in bands) + " |",
             "|" + "---|" * (2 + len(bands))]
    for m, d, by in rows:
        cells = [f"{fmt(by[b]['recall'])} ({by[b]['ref'] - by[b]['matched']} / {by[b]['ref']})" for b in bands]
        lines.append(f"| {METHOD_TITLES.get(m, m)} | {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cause_table(results: dict, key: str, first: str, titles: dict[str, str]) -> str:
    rows = [(m, d, s[key]) for m, res in results["methods"].items() for d, s in res["drums"].items()
            if s.get(key) is not None]
    if not rows:
        return ""
    keys = list(rows[0][2])
    lines = ["| method | drum | " + first + " | " + " | ".join(titles.get(k, k) for k in keys) + " |",
             "|" + "---|" * (3 + len(keys))]
    for m, d, by in rows:
        cells = ["-" if k == d else str(by[k]) for k in keys]
        lines.append(f"| {METHOD_TITLES.get(m, m)} | {d} | {sum(by.values())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def false_cause_table(results: dict) -> str:
    """False triggers (unmatched at 50 ms) per method and drum, by cause (rtdrums.evaluation.causes)."""
    return _cause_table(results, "false_by_cause", "false triggers",
                        {"double": "own hit (double)", "none": "nothing near"})


def miss_cause_table(results: dict) -> str:
    """Missed hits per method and drum: alone, beside quieter hits, or masked by a louder source."""
    return _cause_table(results, "missed_by_cause", "missed hits",
                        {"beside_quieter": "beside quieter hits",
                         **{k: f"masked by {k}" for k in causes.MISS_CAUSES[2:]}})


CAUSES_NOTE = (
    "False triggers (unmatched at 50 ms) go to the source (another drum; a residual tom, crash, ride "
    "or other sound) whose onset is nearest the estimate within "
    f"{causes.ATTACK_WINDOW[0] * 1e3:+.0f}..{causes.ATTACK_WINDOW[1] * 1e3:+.0f} ms; the drum's own hit "
    f"there, or {-causes.RING_WINDOW[1] * 1e3:.0f}-{-causes.RING_WINDOW[0] * 1e3:.0f} ms before it, counts "
    "as a double; nothing near otherwise. Missed hits: alone (no other onset within "
    f"{causes.SIMULTANEOUS * 1e3:.0f} ms), else masked by the loudest simultaneous source when its stem "
    f"is louder over the first {causes.LEVEL_WINDOW * 1e3:.0f} ms (rtdrums/evaluation/causes.py).")


def time_table(results: dict) -> str:
    lines = ["| method | processing time (s) | audio (s) | seconds per 30 s of audio |", "|---|---|---|---|"]
    for m, res in results["methods"].items():
        lines.append(f"| {METHOD_TITLES.get(m, m)} | {fmt(res['seconds'])} | {fmt(res['audio_seconds'], 1)} | "
                     f"{fmt(res['seconds_per_30s_audio'])} |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    what = results.get("kit") or results.get("audio", "")
    p = results["preset"]
    kits = p.get("trained_on") or []
    lines = [f"# rtdrums eval: {what}", "",
             f"Preset `{p['name']}` ({p['templates']} templates"
             + (f", trained on {', '.join(kits)}" if kits else "")
             + f"); protocol: {results.get('protocol', '-')}; {results['sample_rate']} Hz, "
             f"blocks of {results['block']} samples ({fmt(results['block_latency_ms'])} ms); "
             f"stem latency {fmt(results['stem_latency_ms'])} ms."]
    if results.get("grooves"):
        lines.append(f"{len(results['grooves'])} grooves, at most {fmt(results['seconds_per_groove'], 0)} s each"
                     + (", recorded in simulated rooms (rtdrums.training.rooms)." if results.get("rooms") else "."))
    lines += ["", method_table(results), "", velocity_table(results), "", time_table(results), "",
              "Latency: emitted note-on minus true onset, of hits matched within 50 ms. "
              "SDR/SI-SDR: mean over grooves. Baselines other than the trigger are offline."]
    tables = [t for t in (false_cause_table(results), miss_cause_table(results)) if t]
    if tables:
        lines += ["", "## Errors by cause", ""] + [x for t in tables for x in (t, "")] + [CAUSES_NOTE]
    return "\n".join(lines) + "\n"


def _clean(v):
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def write(results: dict, figure: dict, out: Path) -> list[Path]:
    """Write results.md, results.json, activations.png and latency.png into out."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "results.md", out / "results.json", out / "activations.png", out / "latency.png"]
        paths[0].write_text(markdown(results))
        paths[1].write_text(json.dumps(_clean(results), indent=1) + "\n")
    except OSError as e:
        raise UserError(f"cannot write results to {out}: {e.strerror}") from None
    plot_activations(figure, paths[2])
    plot_latency(figure, paths[3])
    return paths


def plot_activations(fig_data: dict, path: Path) -> None:
    """Each drum's activation over time with true (green) and detected (red) onsets."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acts, names = fig_data["activations"], fig_data["names"]
    t = (np.arange(len(acts)) + 1) / fig_data["frame_rate"]
    end = t[-1] if len(t) else 1.0
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.2 * len(names)), sharex=True)
    for ax, (d, name) in zip(np.atleast_1d(axes), enumerate(names)):
        ax.plot(t, acts[:, d], lw=0.8, color="0.2")
        for x in np.asarray(fig_data["true"].get(name, [])):
            if x <= end:
                ax.axvline(x, color="tab:green", lw=1.2, alpha=0.6)
        top = acts[:, d].max() if len(acts) else 1.0
        det = [x for x in np.asarray(fig_data["detected"].get(name, [])) if x <= end]
        ax.plot(det, [top * 1.05] * len(det), "v", color="tab:red", ms=5)
        ax.set_ylabel(name)
    np.atleast_1d(axes)[0].set_title(f"activations, {fig_data['groove']}: true onsets (green lines), "
                                     "detected (red triangles)")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latency(fig_data: dict, path: Path) -> None:
    """Histogram of trigger latency (emitted minus true onset) per drum, with its median, p95, p99
    and maximum marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import latency_summary

    styles = {"median": ("k", "--"), "p95": ("tab:orange", "-"), "p99": ("tab:red", "-"), "max": ("tab:purple", ":")}
    lat = fig_data["latency_ms"]
    fig, axes = plt.subplots(1, len(lat), figsize=(4 * len(lat), 3), sharey=True, squeeze=False)
    for ax, (d, v) in zip(axes[0], lat.items()):
        v = np.asarray(v, float)
        if v.size:
            ax.hist(v, bins=np.arange(np.floor(v.min()) - 0.5, np.ceil(v.max()) + 1.5, 1.0), color="tab:blue")
            summary = latency_summary(v)
            for k in LATENCY_STATS:
                ax.axvline(summary[k], color=styles[k][0], ls=styles[k][1], lw=1.2,
                           label=f"{k} {summary[k]:.1f} ms")
            ax.legend(fontsize=8)
        ax.set_title(f"{d} (n={v.size})")
        ax.set_xlabel("latency (ms)")
    axes[0][0].set_ylabel("hits")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
