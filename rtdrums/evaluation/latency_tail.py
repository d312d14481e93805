"""Where a learned trigger's late notes come from: the sound, or the trigger.

    python -m rtdrums.evaluation.latency_tail --kit KIT [KIT ...] [--preset default]
        [--split validation | --grooves FILES_OR_DIRS] [--seconds 15] [--rooms] [--late-ms 6]
        [--attack-db -20] [--json OUT] [--pair LEVEL [LEVEL ...]]

docs/latency-tail.md has the measurements made with it.

Each groove is rendered with the kit and streamed through the engine exactly as `rtdrums eval`
does (same renders, blocks and matching at 50 ms, so the same latencies). For every matched hit
the latency, note-on minus true onset, is split on the engine's frame grid (hop H, frame f ends at
(f + 1) H):

    grid      the true onset s to the end of the first frame that holds it, f0 = s // H (0 to H);
    attack    f0 to the first frame that holds the hit's attack, fa = (s + a) // H, where a is the
              first sample of the hit's own audio (rendered alone: render.hit_sounds) within
              ATTACK_DB of its peak over its first PEAK_MS: leading noise, a soft pre-ring or a
              slow rise (with --rooms, still the dry hit's). grid + attack is what no causal
              trigger deciding per frame can avoid;
    own       fa to the frame fd that decided the note (the trigger's own delay, in frames);
    block     fd's end rounded up to the block (0 when the block is the hop).

The engine runs the learned trigger alone (a drum's `detector = "both"` is set aside). For each
hit whose own delay is > 0 frames the tool reads the ensemble's probability of the drum
(the K networks' mean, from the reference kernels' features, Engine.analyse) on the frames fa ..
fd - 1 that held the attack and did not trigger, and names why (`cause`):
    retrigger  a frame crossed the threshold, but within the retrigger time of the drum's
               previous trigger (the previous note-on's frame is reported);
    threshold  the probability rose to >= RISE there, but stayed below the threshold;
    features   it stayed below RISE: the network did not see the hit in those frames.
and independently whether a hit of the same drum (`same_before_ms`) or of another source
(`other_before_ms`: another drum or a residual sound, incl. simultaneous ones up to one hop after)
began in the PRIOR_MS before it. A note decided on a frame up to the first that held its attack
has cause `sound`; one decided before the frame that holds its onset, `early` (the trigger fired on
something else within the 50 ms matching window: a negative latency).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

DRUMS = ("kick", "snare", "hihat")
ATTACK_DB = -20.0     # the attack: the hit's first sample within this of its peak ...
PEAK_MS = 50.0        # ... over its first 50 ms (the onset-F window)
RISE = 0.1            # a probability this high on a frame is a rise (the thresholds are 0.3-0.5)
PRIOR_MS = 50.0       # a hit this close before counts as preceding
LATE_MS = 6.0
CAUSES = ("early", "sound", "retrigger", "threshold", "features")


@dataclass
class Note:
    """One matched hit: times in ms, frames relative to the attack frame fa; probs are the drum's
    ensemble probabilities on frames min(f0 - 1, fd) .. fd."""
    kit: str
    groove: str
    drum: str
    articulation: str
    velocity: int
    onset: int                 # true onset, stream sample
    latency_ms: float
    grid_ms: float
    attack_ms: float           # a / sample rate: the hit's own rise to ATTACK_DB
    unavoidable_ms: float      # end of frame fa minus the onset
    own_frames: int            # fd - fa
    block_ms: float
    rise_frame: int | None     # first frame >= f0 with probability >= RISE, relative to fa
    cross_frame: int | None    # first frame >= f0 above the threshold, relative to fa
    cause: str
    previous_trigger_ms: float | None     # the drum's previous note-on frame end before fd, ms before s
    same_before_ms: float | None
    other_before_ms: float | None
    other_label: str | None
    probs: list[float]


def attack_samples(audio: np.ndarray, sample_rate: int, attack_db: float = ATTACK_DB) -> int:
    """First sample of a hit's audio within attack_db of its peak over its first PEAK_MS."""
    head = np.abs(np.asarray(audio[:max(1, int(PEAK_MS / 1000 * sample_rate))], np.float64))
    if not head.size or head.max() <= 0:
        return 0
    return int(np.argmax(head >= head.max() * 10 ** (attack_db / 20)))


def probabilities(engine, x: np.ndarray) -> np.ndarray:
    """(frames, D) the ensemble's probability per drum after every whole hop of x (fresh start;
    the engine is left reset), from the reference kernels' features as training computes them."""
    m, t = engine.preset.onset_model, engine.tables
    feats = engine.analyse(x, m.band_hz, m.short_hz)[1].astype(np.float64)
    D = len(engine.drum_names)
    p = np.zeros((len(feats), D))
    for k in range(t.m_w1.shape[0]):
        hidden = np.maximum(feats @ t.m_w1[k] + t.m_b1[k], 0.0)
        p += 1.0 / (1.0 + np.exp(-(hidden @ t.m_w2[k][:, :D] + t.m_b2[k][:D])))
    return p / t.m_w1.shape[0]


def thresholds(engine) -> np.ndarray:
    """(D,) the probabilities above which the engine triggers (sensitivity applied)."""
    return 1.0 / (1.0 + np.exp(-engine.tables.m_logit))


def diagnose_render(engine, render, sounds: list[np.ndarray], events: np.ndarray, prob: np.ndarray,
                    kit: str = "", groove: str = "", attack_db: float = ATTACK_DB) -> list[Note]:
    """The Notes of one render: events the engine emitted on it, prob its probabilities()."""
    from .causes import source_label
    from .metrics import match

    rate, H = render.sample_rate, engine.settings.hop
    thr = thresholds(engine)
    ms = 1000.0 / rate
    onsets = render.onsets
    all_t = np.array([o.time_s for o in onsets])
    notes = []
    for d, name in enumerate(engine.drum_names):
        if name not in DRUMS:
            continue
        idx = [k for k, o in enumerate(onsets) if o.drum == name]
        ref = np.array([onsets[k].time_s for k in idx])
        ev = np.sort(events[events["drum"] == d], order="onset")
        frames = np.sort(ev["decided"] // H)
        for i, j in match(ref, ev["onset"] / rate):
            o, k = onsets[idx[i]], idx[i]
            s = int(round(o.time_s * rate))
            a = attack_samples(sounds[k], rate, attack_db)
            f0, fa, fd = s // H, (s + a) // H, int(ev["decided"][j] // H)
            lo = max(min(f0 - 1, fd), 0)
            p = prob[lo:fd + 1, d] if fd < len(prob) else prob[lo:, d]
            rel = lambda f: None if f is None else int(f - fa)
            rise = next((f for f in range(f0, min(fd + 1, len(prob))) if prob[f, d] >= RISE), None)
            cross = next((f for f in range(f0, min(fd + 1, len(prob))) if prob[f, d] > thr[d]), None)
            before = frames[frames < fd]
            prev = int(before[-1]) if len(before) else None
            if fd < f0:
                cause = "early"
            elif fd <= fa:
                cause = "sound"
            else:
                held = prob[fa:fd, d]
                if held.size and np.any(held > thr[d]):
                    cause = "retrigger"
                elif held.size and held.max() >= RISE:
                    cause = "threshold"
                else:
                    cause = "features"
            same = [o.time_s - t for t in ref if 0 < o.time_s - t <= PRIOR_MS / 1000]
            near = [(o.time_s - all_t[q], q) for q in range(len(onsets))
                    if onsets[q].drum != name and -H / rate <= o.time_s - all_t[q] <= PRIOR_MS / 1000]
            near.sort(key=lambda z: abs(z[0]))
            notes.append(Note(
                kit, groove, name, o.articulation, o.velocity, s,
                latency_ms=float((ev["emitted"][j] - s) * ms), grid_ms=float(((f0 + 1) * H - s) * ms),
                attack_ms=a * ms, unavoidable_ms=float(((fa + 1) * H - s) * ms), own_frames=fd - fa,
                block_ms=float((ev["emitted"][j] - (fd + 1) * H) * ms),
                rise_frame=rel(rise), cross_frame=rel(cross), cause=cause,
                previous_trigger_ms=None if prev is None else float((s - (prev + 1) * H) * ms),
                same_before_ms=min(same) * 1000 if same else None,
                other_before_ms=near[0][0] * 1000 if near else None,
                other_label=source_label(onsets[near[0][1]].drum, onsets[near[0][1]].articulation) if near else None,
                probs=[round(float(v), 3) for v in p]))
    return notes


def diagnose_kit(kit_dir: Path, preset, grooves: list[Path], seconds: float | None = 15.0,
                 sample_rate: int = 48000, block: int = 128, rooms: bool = False,
                 attack_db: float = ATTACK_DB, pairs: tuple[float, ...] = (),
                 rules: dict | None = None) -> tuple[list[Note], dict]:
    """Notes of every groove rendered with the kit (as rtdrums eval renders them), and how many of
    the engine's events the probabilities reproduce (replayed with the decision rule). With
    `pairs`, the replayed rule and the pair rule at each of those levels are scored into `rules`
    (rule_scores)."""
    from ..engine import Engine
    from ..offline import separate
    from ..training.kits import load_kit
    from ..training.render import render_groove, hit_sounds
    from ..training.rooms import EVAL_SEED, vary

    kit = load_kit(kit_dir)
    # the learned trigger alone: a drum's detector = "both" would add notes no replay of the networks makes
    preset = replace(preset, drums=tuple(replace(d, detector=None) for d in preset.drums))
    engine = Engine(preset, sample_rate, max_block=max(block, 8192))
    engine.warm()
    notes, agree = [], {"events": 0, "replayed": 0}
    for gi, groove in enumerate(grooves):
        r = render_groove(groove, kit, sample_rate, max_seconds=seconds)
        if rooms:
            r = vary(r, EVAL_SEED + gi)
        engine.reset()
        events = separate(engine, r.mix, block).events
        prob = probabilities(engine, r.mix)
        same = replayed(prob, thresholds(engine), engine.tables.m_retrig, engine.settings.hop)
        for d in range(prob.shape[1]):
            mine = set(same[d])
            theirs = set((events[events["drum"] == d]["decided"] // engine.settings.hop).tolist())
            agree["events"] += len(theirs)
            agree["replayed"] += len(mine & theirs)
        if rules is not None:
            rule_scores(rules, engine, r, prob, pairs, block)
        sounds = hit_sounds(groove, kit, sample_rate, seconds)
        notes += diagnose_render(engine, r, sounds, events, prob, kit.name, Path(groove).name, attack_db)
    return notes, agree


def replayed(prob: np.ndarray, thr: np.ndarray, retrig: np.ndarray, hop: int,
             pair: float | None = None) -> list[list[int]]:
    """Frames at which each drum triggers by onset_model.decide's rule (scan 0) on prob; with
    `pair`, also where two frames in a row are above that level (a lower threshold for the second
    frame of a rise)."""
    out = []
    for d in range(prob.shape[1]):
        above = prob[:, d] > thr[d]
        if pair is not None:
            two = prob[:, d] > pair
            above[1:] |= two[1:] & two[:-1]
        frames, last = [], None
        for f in np.flatnonzero(above):
            if last is None or (f - last) * hop >= retrig[d]:
                frames.append(int(f))
                last = f
        out.append(frames)
    return out


def rule_scores(rules: dict, engine, render, prob: np.ndarray, pairs: tuple[float, ...], block: int) -> None:
    """Add one render's onset counts (reference, estimates, matches at 50 and 20 ms) and
    latencies per drum of the replayed decision rule ("threshold") and of each pair rule ("pair
    LOW") into rules[label][drum] = {"counts": (4,) array, "latency": list of ms}."""
    from .metrics import match

    H, rate, off = engine.settings.hop, render.sample_rate, engine.params.onset_offset
    thr, retrig = thresholds(engine), engine.tables.m_retrig
    for pair in (None,) + tuple(pairs):
        label = "threshold" if pair is None else f"pair {pair:g}"
        frames = replayed(prob, thr, retrig, H, pair)
        for d, name in enumerate(engine.drum_names):
            if name not in DRUMS:
                continue
            t = rules.setdefault(label, {}).setdefault(name, {"counts": np.zeros(4, np.int64), "latency": []})
            f = np.array(frames[d], np.int64)
            ref, est = render.times(name), ((f + 1) * H - off) / rate
            emitted = -(-(f + 1) * H // block) * block
            m50, m20 = match(ref, est, 0.05), match(ref, est, 0.02)
            t["counts"] += [len(ref), len(f), len(m50), len(m20)]
            t["latency"] += list((emitted[m50[:, 1]] - np.round(ref[m50[:, 0]] * rate)) / rate * 1000)


def rules_table(rows: dict[str, dict]) -> str:
    """Markdown: F at 50 / 20 ms and latency median / p95 (ms) per drum of each rule (rule_scores)."""
    lines = ["| run | rule | " + " | ".join(f"{d}: F 50 / 20, latency med / p95" for d in DRUMS) + " |",
             "|---|---|" + "---|" * len(DRUMS)]
    for label, rules in rows.items():
        for rule, drums in rules.items():
            cells = []
            for d in DRUMS:
                if d not in drums:
                    cells.append("-")
                    continue
                n_ref, n_est, m50, m20 = drums[d]["counts"]
                lat = np.array(drums[d]["latency"])
                f = lambda m: 2 * m / max(n_ref + n_est, 1)
                q = f"{np.median(lat):.1f} / {np.percentile(lat, 95):.1f}" if lat.size else "-"
                cells.append(f"{f(m50):.3f} / {f(m20):.3f}, {q}")
            lines.append(f"| {label} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(notes: list[Note], late_ms: float = LATE_MS) -> dict:
    """Per drum: latency, its unavoidable part and the trigger's own (median, p95 ms), and the late
    notes (> late_ms) by cause and by what preceded them."""
    out = {}
    for drum in DRUMS:
        ns = [n for n in notes if n.drum == drum]
        if not ns:
            continue
        lat = np.array([n.latency_ms for n in ns])
        una = np.array([n.unavoidable_ms for n in ns])
        own = lat - una - np.array([n.block_ms for n in ns])
        late = [n for n in ns if n.latency_ms > late_ms]
        q = lambda v: (round(float(np.median(v)), 1), round(float(np.percentile(v, 95)), 1))
        out[drum] = {
            "n": len(ns), "latency": q(lat), "unavoidable": q(una), "own": q(own),
            "attack_ms": q([n.attack_ms for n in ns]),
            "late": len(late),
            "late_unavoidable_ms": round(float(sum(n.unavoidable_ms for n in late)), 1),
            "late_own_ms": round(float(sum(n.latency_ms - n.unavoidable_ms - n.block_ms for n in late)), 1),
            "late_attack_over": sum(n.unavoidable_ms > late_ms for n in late),
            "late_by_cause": {c: sum(n.cause == c for n in late) for c in CAUSES},
            "late_same_before": sum(n.same_before_ms is not None for n in late),
            "late_other_before": sum(n.other_before_ms is not None for n in late),
        }
    return out


def _share(v: dict) -> str:
    total = v["late_unavoidable_ms"] + v["late_own_ms"]
    return f"{v['late_unavoidable_ms'] / total:.2f}" if total > 0 else "-"


def table(rows: dict[str, dict], late_ms: float = LATE_MS) -> str:
    """Markdown: one row per (label, drum) of summary()s (ms)."""
    late = f"> {late_ms:g} ms"
    head = (f"| run | drum | n | latency med / p95 | unavoidable med / p95 | own med / p95 | late ({late}) | "
            f"late, unavoidable alone {late} | late: unavoidable share of their latency | "
            "late by cause: sound / retrigger / threshold / features | "
            f"late after same drum / other source ({PRIOR_MS:g} ms) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for label, s in rows.items():
        for drum, v in s.items():
            c = v["late_by_cause"]
            lines.append(f"| {label} | {drum} | {v['n']} | {v['latency'][0]} / {v['latency'][1]} | "
                         f"{v['unavoidable'][0]} / {v['unavoidable'][1]} | {v['own'][0]} / {v['own'][1]} | "
                         f"{v['late']} | {v['late_attack_over']} | {_share(v)} | "
                         f"{c['sound']} / {c['retrigger']} / {c['threshold']} / {c['features']} | "
                         f"{v['late_same_before']} / {v['late_other_before']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..errors import UserError
    from ..preset import load_preset
    from ..training.render import groove_files
    from .kit_tool_args import check_kits, kit_tool_parser

    p = kit_tool_parser("rtdrums.evaluation.latency_tail", __doc__, grooves="instead of --split")
    p.add_argument("--split", default="validation", help="shipped groove split (default validation)")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--late-ms", type=float, default=LATE_MS)
    p.add_argument("--attack-db", type=float, default=ATTACK_DB,
                   help=f"a hit's attack: its first sample this close to its peak (default {ATTACK_DB:g} dB)")
    p.add_argument("--json", type=Path, help="write every note's diagnosis here")
    p.add_argument("--pair", type=float, nargs="+", default=(), metavar="LEVEL",
                   help="also score the decision rule that triggers on two frames in a row above LEVEL")
    a = p.parse_args(argv)
    try:
        preset = load_preset(a.preset)
        grooves = groove_files(a.grooves, a.split)
        check_kits(a.kit)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, rule_rows, everything = {}, {}, []
    for k in a.kit:
        rules = {} if a.pair else None
        notes, agree = diagnose_kit(k, preset, grooves, a.seconds, a.sample_rate, a.block, a.rooms, a.attack_db,
                                    tuple(a.pair), rules)
        rows[k.name] = summary(notes, a.late_ms)
        if rules:
            rule_rows[k.name] = rules
        everything += notes
        print(f"{k.name}: {agree['replayed']} of {agree['events']} engine triggers replayed from the "
              "probabilities", file=sys.stderr, flush=True)
    print(table(rows, a.late_ms))
    if rule_rows:
        pooled = {}
        for rules in rule_rows.values():
            for rule, drums in rules.items():
                for d, t in drums.items():
                    acc = pooled.setdefault(rule, {}).setdefault(d, {"counts": np.zeros(4, np.int64), "latency": []})
                    acc["counts"] += t["counts"]
                    acc["latency"] += t["latency"]
        print()
        print(rules_table({**rule_rows, "pooled": pooled}))
    if a.json:
        a.json.write_text(json.dumps({"summary": rows, "notes": [asdict(n) for n in everything]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
