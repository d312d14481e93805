"""Velocity read-outs compared on one soundcheck preset's decisions (docs/velocity.md, 2026-12-08).

The preset's networks decide on the takes `rtdrums train --kit` fits them on (train.FAST: 48 model
grooves x 5 s) and on the validation grooves (whole); each read-out is fitted on the first and
scored (Pearson r of the sent velocity with the played one, per drum) on the second, the same
decisions for all, so only the read-out differs. Prints one row per read-out: kick / snare / hi-hat.
Usage: python -m rtdrums.evaluation.velocity_readout_study PRESET_DIR KIT_DIR
"""
import sys
from dataclasses import replace

import numpy as np

from rtdrums.dsp.adapt import with_adaptation
from rtdrums.dsp.onset_model import LAGS
from rtdrums.engine import Engine
from rtdrums.preset import load_preset
from rtdrums.training import onset_training as ot
from rtdrums.training.kits import load_kit
from rtdrums.training.render import render_groove, shipped_grooves
from rtdrums.training.train import FAST, learned_grooves
from rtdrums.training.velocity_fit import apply_curve, fit_readout


def hidden(n, X):
    return np.maximum(X @ n.w1 + n.b1, 0)


def probabilities(m, X):
    return sum(1 / (1 + np.exp(-(hidden(n, X) @ n.w2 + n.b2))) for n in m.networks) / len(m.networks)


def decisions(engine, m, mixes_and_onsets, retrig):
    """Per drum: standardised feature rows of the decisions on true hits, played velocities, chosen articulations."""
    s, D, ga = engine.settings, len(engine.drum_names), engine.tables.group_art
    out = {d: ([], [], []) for d in range(D)}
    for mix, onsets in mixes_and_onsets:
        X = (ot.record_features(engine, mix, m.band_hz) - m.mean) / m.scale
        p = probabilities(m, X)
        for d, name in enumerate(engine.drum_names):
            ons = [o for o in onsets if o.drum == name]
            at = np.array([round(o.time_s * s.sample_rate) for o in ons], np.int64)
            frames, pairs = ot._matches(at, p[:, d], m.threshold[d], retrig, s.hop, engine.params.onset_offset,
                                        s.sample_rate)
            for i, j in pairs:
                f = frames[j]
                out[d][0].append(X[f])
                out[d][1].append(ons[i].velocity)
                out[d][2].append(int(ga[d]) + int(np.argmax(p[f, D + ga[d]:D + ga[d + 1]])))
    return {d: tuple(np.array(x) for x in v) for d, v in out.items()}


def main(preset_dir, kit_dir):
    preset, kit = load_preset(preset_dir), load_kit(kit_dir)
    m = preset.onset_model
    engine = Engine(with_adaptation(replace(preset, onset_model=None), False), max_block=preset.stft.hop)
    s = engine.settings
    retrig = max(1, -(-round(m.retrigger_ms / 1000 * s.sample_rate) // s.hop))
    grooves = learned_grooves(None, FAST)            # the training's own takes, gated as it gates them
    Xs, _, takes = ot._record(engine, [kit], grooves, FAST.model_seconds, m.band_hz, None, 0.0,
                              FAST.model_seconds + ot.TAIL_S)
    Xs = (Xs - m.mean) / m.scale
    probs = [probabilities(m, Xs[t.start:t.stop]) for t in takes]
    fit_on = {}
    for d in range(len(engine.drum_names)):
        rows, target = ot._decisions(takes, probs, d, m.threshold[d], retrig, s.hop, engine.params.onset_offset,
                                     s.sample_rate)
        ga, D = engine.tables.group_art, len(engine.drum_names)
        chosen = ga[d] + np.argmax(probabilities(m, Xs[rows])[:, D + ga[d]:D + ga[d + 1]], axis=1)
        fit_on[d] = (Xs[rows], np.round(target * 127), chosen)
    val = [render_groove(g, kit, s.sample_rate) for g in shipped_grooves("validation")]
    score_on = decisions(engine, m, [(r.mix, r.onsets) for r in val], retrig)
    Z = m.n_features // (LAGS + 1)
    ga = engine.tables.group_art
    rows = {}
    for d in range(len(engine.drum_names)):
        arts = range(int(ga[d]), int(ga[d + 1]))
        X, v, a = fit_on[d]
        Xv, vv, av = score_on[d]

        def sent(fits):          # the mean of the read-outs' velocities, as the engine sends it
            vel = np.mean([[apply_curve(x, f.curves[k - arts.start]) for x, k in zip(sc, av)] for f, sc in fits], 0)
            return np.clip(np.floor(127 * vel + 0.5), 1, 127)

        features = fit_readout(X, v, a, arts, columns=Z)
        own = [(features, Xv @ features.w + features.b)]
        each = [fit_readout(X, v, a, arts, columns=Z, hidden=hidden(n, X)) for n in m.networks]
        with_h = [(f, Xv @ f.w + f.b + hidden(n, Xv) @ f.wh) for f, n in zip(each, m.networks)]
        for name, fits in (("frame's levels (before)", own), ("levels + hidden units, network 1 alone", with_h[:1]),
                           (f"levels + hidden units, mean of {len(with_h)} networks (after)", with_h)):
            rows.setdefault(name, []).append(np.corrcoef(vv, sent(fits))[0, 1])
        rows.setdefault("hits fitted on:scored", []).append(f"{len(v)}:{len(vv)}")
    for name, r in rows.items():
        print(f"{name}: " + " / ".join(x if isinstance(x, str) else f"{x:.3f}" for x in r))


if __name__ == "__main__":
    main(*sys.argv[1:3])
