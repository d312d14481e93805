"""Where a preset's kick and snare errors come from on a kit: per hit, what the trigger saw.

    python -m rtdrums.evaluation.drum_errors --kit KIT [KIT ...] [--preset default] [--rooms]
        [--grooves FILES_OR_DIRS] [--seconds 15] [--json OUT]

Each groove (default: the validation split) is rendered with the kit as `rtdrums eval` renders it
(with --rooms in eval's rooms), then streamed block by block through three engines on the same
preset: its learned trigger as given (with the threshold detector beside it for a drum marked
`detector = "both"`), the same with [adapt] enabled, and the threshold detector the preset also
holds alone (its onset model removed). The first is scored as eval
scores it (F at 50 ms, misses by velocity, false triggers by cause). For each true hit of the
drum the tool reads, over the frames from the one holding the onset to WINDOW_MS after it:

    prob      the ensemble's highest probability of the drum (the networks' mean, the features of
              the reference kernels: latency_tail.probabilities);
    share     the drum's template group's share of all activation (sum of h over the window; the
              templates have unit L1 columns, so h is energy), and the same for the toms, the
              cymbals and the other drums: whether the templates explain the hit as this drum;
    rise      the drum's activation rise over the window, as a fraction of its full-velocity
              reference (the threshold detector's scale);
and whether the adapted learned trigger and the threshold detector found it (a trigger within
50 ms). summary() pools these per drum over found and missed hits of the learned trigger.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

DRUMS = ("kick", "snare")
WINDOW_MS = 20.0                 # a hit's frames: the onset's to this much after it
PROB_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 1.01)


@dataclass
class Hit:
    """One true hit of a drum and what the engines made of it."""
    kit: str
    groove: str
    drum: str
    time_s: float
    velocity: int
    found: bool                  # by the learned trigger as shipped (50 ms)
    found_adapt: bool            # ... with [adapt] enabled
    found_threshold: bool        # by the threshold detector
    miss_cause: str | None       # causes.miss_cause for a miss of the learned trigger
    prob: float
    share: float
    share_tom: float
    share_cymbal: float
    share_other_drums: float
    rise: float


@dataclass
class Trigger:
    """One note-on of the learned trigger as shipped, and the drum's templates at the frame that
    decided it: the activation's rise over the LAGS frames before, as a fraction of the drum's
    reference, and its share of all activation in that frame (both causal: what decide() could read)."""
    kit: str
    groove: str
    drum: str
    time_s: float
    matched: bool
    cause: str | None            # causes.false_trigger_cause of an unmatched one
    prob: float
    rise: float
    share: float
    rise_after: list[float]      # the rise (same base) on the frames 1 .. AFTER after the deciding one
    other_rise: list[float]      # each other drum's rise over its reference at the deciding frame


AFTER = 4


def variants(preset):
    """The three engines' presets: as shipped, with adaptation, the threshold detector."""
    return {"learned": replace(preset, adapt=replace(preset.adapt, enabled=False)),
            "adapt": replace(preset, adapt=replace(preset.adapt, enabled=True)),
            "threshold": replace(preset, onset_model=None, adapt=replace(preset.adapt, enabled=False))}


def group_columns(preset) -> dict[str, np.ndarray]:
    """Template columns per drum, and of the residual's toms and cymbals."""
    from ..preset import articulations

    gs = articulations(preset)["group_start"]
    out = {d.name: np.arange(gs[i], gs[i + 1]) for i, d in enumerate(preset.drums)}
    res = np.arange(gs[-2], gs[-1])
    labels = np.array(preset.residual_labels)
    out["tom"] = res[labels == "tom"]
    out["cymbal"] = res[labels != "tom"]
    return out


def diagnose_render(engines: dict, render, kit: str, groove: str, tallies: dict) -> tuple[list[Hit], list[Trigger]]:
    """Hits of kick and snare in one render, and the learned trigger's note-ons; adds each engine's onsets to tallies[engine][drum]
    (run.Tally, scored as rtdrums eval scores them)."""
    from ..offline import separate
    from . import causes
    from .latency_tail import probabilities
    from .metrics import match

    learned = engines["learned"]
    rate, H = render.sample_rate, learned.settings.hop
    src = causes.Sources.from_render(render)
    found, triggers = {}, {}
    for name, engine in engines.items():
        engine.reset()
        ev = separate(engine, render.mix).events
        for d, drum in enumerate(engine.drum_names):
            if drum not in tallies[name]:
                continue
            e = np.sort(ev[ev["drum"] == d], order="onset")
            est = e["onset"] / rate
            tallies[name][drum].add_onsets(render.times(drum), est, e["emitted"] / rate, render.velocities(drum),
                                           e["velocity"].astype(float), drum, src)
            hit = np.zeros(len(render.times(drum)), bool)
            pairs = match(render.times(drum), est)
            hit[pairs[:, 0]] = True
            found[name, drum] = hit
            if name == "learned":
                ok = np.zeros(len(e), bool)
                ok[pairs[:, 1]] = True
                triggers[drum] = (e, ok)
    prob = probabilities(learned, render.mix)
    h = learned.analyse(render.mix)[0]
    cols = group_columns(learned.preset)
    total = h.sum(axis=1)
    width = int(round(WINDOW_MS / 1000 * rate / H)) + 1
    hits, notes = [], []
    for d, drum in enumerate(learned.drum_names):
        if drum not in DRUMS:
            continue
        ref_level = learned.preset.drums[d].reference
        act = h[:, cols[drum]].sum(axis=1)
        others = np.concatenate([cols[o] for o in learned.drum_names if o != drum])
        for i, (t, v) in enumerate(zip(render.times(drum), render.velocities(drum))):
            f0 = int(round(t * rate)) // H
            w = slice(f0, min(f0 + width, len(h)))
            if w.start >= len(h):
                continue
            energy = max(float(total[w].sum()), 1e-12)
            part = lambda c: float(h[w][:, c].sum()) / energy
            before = float(act[max(f0 - 2, 0):f0 + 1].min())
            ok = bool(found["learned", drum][i])
            hits.append(Hit(
                kit, groove, drum, float(t), int(v), ok, bool(found["adapt", drum][i]),
                bool(found["threshold", drum][i]),
                None if ok else causes.miss_cause(drum, float(t), src),
                prob=round(float(prob[w, d].max()), 3), share=round(part(cols[drum]), 3),
                share_tom=round(part(cols["tom"]), 3), share_cymbal=round(part(cols["cymbal"]), 3),
                share_other_drums=round(part(others), 3),
                rise=round((float(act[w].max()) - before) / ref_level, 3)))
        e, ok = triggers[drum]
        for ev, m in zip(e, ok):
            fd = min(int(ev["decided"]) // H, len(h) - 1)
            low = float(act[max(fd - 3, 0):fd].min()) if fd > 0 else 0.0
            t = float(ev["onset"]) / rate
            after = [round((float(act[min(fd + k, len(h) - 1)]) - low) / ref_level, 3) for k in range(1, AFTER + 1)]
            other = []
            for o, od in enumerate(learned.preset.drums):
                if od.name != drum:
                    a_o = h[:, cols[od.name]].sum(axis=1)
                    lo_o = float(a_o[max(fd - 3, 0):fd].min()) if fd > 0 else 0.0
                    other.append(round((float(a_o[fd]) - lo_o) / od.reference, 3))
            notes.append(Trigger(kit, groove, drum, t, bool(m), None if m else causes.false_trigger_cause(drum, t, src),
                                 prob=round(float(prob[fd, d]), 3), rise=round((float(act[fd]) - low) / ref_level, 3),
                                 share=round(float(act[fd]) / max(float(total[fd]), 1e-12), 3),
                                 rise_after=after, other_rise=other))
    return hits, notes


def diagnose_kit(kit_dir: Path, preset, grooves: list[Path], seconds: float | None = 15.0,
                 rooms: bool = False) -> tuple[list[Hit], list[Trigger], dict]:
    """Hits and learned note-ons of every groove rendered with the kit (as rtdrums eval renders
    them) and each engine's eval-style scores (Tally.summary() per drum)."""
    from ..engine import Engine
    from ..training.kits import load_kit
    from ..training.render import render_groove
    from ..training.rooms import EVAL_SEED, vary
    from .run import Tally

    kit = load_kit(kit_dir)
    engines = {}
    for name, p in variants(preset).items():
        engines[name] = Engine(p, 48000, max_block=8192)
        engines[name].warm()
    tallies = {name: {d: Tally() for d in ("kick", "snare", "hihat")} for name in engines}
    hits, notes = [], []
    for gi, groove in enumerate(grooves):
        r = render_groove(groove, kit, 48000, max_seconds=seconds)
        if rooms:
            r = vary(r, EVAL_SEED + gi)
        h, n = diagnose_render(engines, r, kit.name, Path(groove).name, tallies)
        hits, notes = hits + h, notes + n
    return hits, notes, {name: {d: t.summary() for d, t in ts.items()} for name, ts in tallies.items()}


def summary(hits: list[Hit]) -> dict:
    """Per drum, over the learned trigger's found and missed hits: counts, how many of the misses
    the adapted trigger and the threshold detector found, the misses by ensemble probability
    (PROB_BINS), and the medians of the template shares and the rise."""
    out = {}
    for drum in DRUMS:
        row = {}
        for label, sel in (("found", True), ("missed", False)):
            hs = [h for h in hits if h.drum == drum and h.found == sel]
            if not hs:
                continue
            med = lambda k: round(float(np.median([getattr(h, k) for h in hs])), 3)
            row[label] = {
                "n": len(hs), "velocity": med("velocity"),
                "adapt_found": sum(h.found_adapt for h in hs),
                "threshold_found": sum(h.found_threshold for h in hs),
                "prob_bins": np.histogram([h.prob for h in hs], PROB_BINS)[0].tolist(),
                **{k: med(k) for k in ("prob", "share", "share_tom", "share_cymbal", "share_other_drums", "rise")},
                "own_share_below_half": sum(h.share < 0.5 for h in hs),
            }
        out[drum] = row
    return out


def table(rows: dict[str, dict]) -> str:
    """Markdown: one row per (run, drum, found/missed) of summary()s."""
    bins = " / ".join(f"<{b:g}" for b in PROB_BINS[1:-1]) + f" / >={PROB_BINS[-2]:g}"
    lines = [f"| run | drum | hits | n | velocity med | prob med | prob {bins} | own share med | "
             "own share < 0.5 | tom / cymbal / other drums share med | rise med | adapted finds | "
             "threshold detector finds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, s in rows.items():
        for drum, v in s.items():
            for kind, r in v.items():
                lines.append(
                    f"| {label} | {drum} | {kind} | {r['n']} | {r['velocity']:g} | {r['prob']:.2f} | "
                    f"{' / '.join(map(str, r['prob_bins']))} | {r['share']:.2f} | {r['own_share_below_half']} | "
                    f"{r['share_tom']:.2f} / {r['share_cymbal']:.2f} / {r['share_other_drums']:.2f} | "
                    f"{r['rise']:.2f} | {r['adapt_found']} | {r['threshold_found']} |")
    return "\n".join(lines)


def triggers_table(triggers: list[Trigger]) -> str:
    """Markdown: per kit and drum, the learned note-ons that were right and the false ones by
    cause, with the medians of probability, rise and share at the deciding frame."""
    lines = ["| kit | drum | note-ons | n | prob med | rise med | rise < 0.05 | share med |", "|---|---|---|---|---|---|---|---|"]
    for kit in dict.fromkeys(t.kit for t in triggers):
        for drum in DRUMS:
            ts = [t for t in triggers if t.kit == kit and t.drum == drum]
            for label in ["right"] + sorted({t.cause for t in ts if t.cause}):
                sel = [t for t in ts if (t.matched if label == "right" else t.cause == label)]
                if not sel:
                    continue
                med = lambda k: float(np.median([getattr(t, k) for t in sel]))
                lines.append(f"| {kit} | {drum} | {label if label == 'right' else 'false: ' + label} | {len(sel)} | "
                             f"{med('prob'):.2f} | {med('rise'):.3f} | {sum(t.rise < 0.05 for t in sel)} | {med('share'):.2f} |")
    return "\n".join(lines)


def scores_table(scores: dict[str, dict]) -> str:
    """Markdown: per run and engine, F / precision / recall at 50 ms of kick, snare, hi-hat."""
    lines = ["| run | engine | F kick / snare / hi-hat | P | R |", "|---|---|---|---|---|"]
    for label, engines in scores.items():
        for name, drums in engines.items():
            cell = lambda k: " / ".join(f"{drums[d][k]:.2f}" for d in ("kick", "snare", "hihat"))
            lines.append(f"| {label} | {name} | {cell('f_50ms')} | {cell('p_50ms')} | {cell('r_50ms')} |")
    return "\n".join(lines)


def errors_table(scores: dict[str, dict], engine: str = "learned") -> str:
    """Markdown: per run, kick and snare misses by reference velocity band and false triggers by
    cause of one engine (as rtdrums eval reports them)."""
    from .causes import FALSE_CAUSES
    from .run import VELOCITY_BANDS

    bands = " / ".join(f"{lo}-{hi}" for lo, hi in VELOCITY_BANDS)
    lines = [f"| run | drum | missed of true, velocity {bands} | false triggers: " + " / ".join(FALSE_CAUSES) + " |",
             "|---|---|---|---|"]
    for label, engines in scores.items():
        for d in DRUMS:
            s = engines[engine][d]
            vel = " / ".join(f"{b['missed']} of {b['ref']}" for b in s["recall_by_velocity"].values())
            fc = " / ".join(str((s["false_by_cause"] or {}).get(c, 0)) for c in FALSE_CAUSES)
            lines.append(f"| {label} | {d} | {vel} | {fc} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..errors import UserError
    from ..preset import load_preset
    from ..training.render import groove_files
    from .kit_tool_args import check_kits, kit_tool_parser

    p = kit_tool_parser("rtdrums.evaluation.drum_errors", __doc__)
    p.add_argument("--json", type=Path, help="write every hit and each engine's scores here")
    a = p.parse_args(argv)
    try:
        preset = load_preset(a.preset)
        if preset.onset_model is None:
            raise UserError(f"{a.preset}: the preset has no learned trigger; pass one that has")
        grooves = groove_files(a.grooves, "validation")
        check_kits(a.kit)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, scores, everything, notes = {}, {}, [], []
    for k in a.kit:
        hits, n, s = diagnose_kit(k, preset, grooves, a.seconds, a.rooms)
        rows[k.name], scores[k.name] = summary(hits), s
        everything += hits
        notes += n
        print(f"{k.name} done", file=sys.stderr, flush=True)
    if len(a.kit) > 1:
        rows["pooled"] = summary(everything)
    print(scores_table(scores))
    print()
    print(table(rows))
    print()
    print(triggers_table(notes))
    for engine in ("learned", "threshold"):
        print()
        print(f"{engine}:")
        print(errors_table(scores, engine))
    if a.json:
        a.json.write_text(json.dumps({"scores": scores, "summary": rows,
                                      "hits": [asdict(h) for h in everything],
                                      "triggers": [asdict(t) for t in notes]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
