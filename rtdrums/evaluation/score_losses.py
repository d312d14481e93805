"""Where score-informed separation loses against the ideal mask: variants of its factorisation on
rendered grooves of the validation split (tuning material; --split train also), stem SI-SDR per drum.

    python -m rtdrums.evaluation.score_losses VARIANTS [--kits K ...] [--grooves N] [--first I]
           [--seconds S] [--split validation|train]

VARIANTS, comma-separated: base (separate_informed's factorisation with the exact score, no
alignment), oracleW (templates fitted to each true stem, then fixed, score windows), oracleWH
(the stems' own fits: the rank-limited NMF model's ceiling), pen<X> (residual penalty X), ar (the
residual's templates adapt too), it<N> (N updates), solo (solo_templates first), take (the
drums start from take_templates, the residual adapts on its own windows: separate_informed's
templates="take"), take0 (take_templates, the residual fixed); `+` combines ar, it<N>, solo and
take/take0. `--ideal` instead prints the ideal ratio mask's SI-SDR with the engine's frames
and with symmetric Hann STFTs, mask exponents 1 and 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.signal import istft, stft

from .. import score_informed as si
from ..preset import load_preset
from ..tables import map_templates
from ..training.kits import load_kit
from ..training.render import render_groove, shipped_grooves
from .metrics import si_sdr
from .score_eval import DRUMS, KIT_DIR, ideal_mask


def _oracle(r, W0, cols, s, n_frames):
    """Each group's templates and activations fitted to its own true stem (100 updates)."""
    W, H = W0.copy(), np.zeros((W0.shape[1], n_frames))
    for d, c in zip((*DRUMS, "residual"), cols):
        Vd = np.abs(si.frame_spectra(r.stems[d].astype(np.float64), s, 0, n_frames)).T
        W[:, c], H[c] = si.factorise(Vd, W0[:, c], np.ones((len(c), n_frames), bool), np.arange(len(c)),
                                     np.zeros(0, int), 100)
    return W, H


def variants(r, notes, preset, names) -> dict[str, list[float]]:
    s = preset.stft
    cols = si._group_columns(preset)
    x = r.mix.astype(np.float64)
    n_frames = (len(x) + s.synthesis) // s.hop + 1
    X = si.frame_spectra(x, s, 0, n_frames)
    V = np.abs(X).T
    W0 = map_templates(preset.W, preset.stft, s)
    M = si.window_mask(notes, 0.0, preset, s, n_frames)
    oracle = None
    out = {}
    for v in names:
        parts = v.split("+")
        it, pen, W = si.ITERATIONS, si.RESIDUAL_PENALTY, W0
        adapt = np.arange(W0.shape[1]) if "ar" in parts else np.concatenate(cols[:-1])
        for part in parts:
            if part.startswith("it"):
                it = int(part[2:])
            if part.startswith("pen"):
                pen = float(part[3:])
        Mv, colsv, free_frames = M, cols, None
        if "solo" in parts:
            W = si.solo_templates(V.astype(np.float32), W0, M, cols)
        if "take" in parts or "take0" in parts:
            W, colsv = si.take_templates(V, W0, cols, notes, 0.0, s)
            Mv = si.window_mask(notes, 0.0, preset, s, n_frames, colsv)
            adapt = np.arange(W.shape[1]) if "ar" in parts else np.concatenate(colsv[:-1])
            free_frames = Mv[colsv[-1][0]] if "take" in parts else None
        if v in ("oracleW", "oracleWH") and oracle is None:
            oracle = _oracle(r, W0, cols, s, n_frames)
        if v == "oracleWH":
            W, H = oracle
        else:
            if v == "oracleW":
                W, adapt = oracle[0], np.zeros(0, np.int64)
            old, si.RESIDUAL_PENALTY = si.RESIDUAL_PENALTY, pen
            try:
                W, H = si.factorise(V, W, Mv, adapt, colsv[-1], it, free_frames)
            finally:
                si.RESIDUAL_PENALTY = old
        stems = si.synthesise(X, si._masks(W, H, colsv, preset.mask_exponent), s, len(x))
        out[v] = [si_sdr(r.stems[d], stems[:, i]) for i, d in enumerate(DRUMS)]
    return out


def ideal_variants(r, preset) -> dict[str, list[float]]:
    st = ideal_mask(r, preset)
    out = {"engine frames, exponent 2": [si_sdr(r.stems[d], st[:, i]) for i, d in enumerate(DRUMS)]}
    for nfft, hop in ((512, 128), (1024, 256), (2048, 512), (4096, 1024)):
        Z = {d: stft(r.stems[d], nperseg=nfft, noverlap=nfft - hop)[2] for d in (*DRUMS, "residual")}
        X = stft(r.mix, nperseg=nfft, noverlap=nfft - hop)[2]
        for a in (1, 2):
            mags = {d: np.abs(z) ** a for d, z in Z.items()}
            den = np.maximum(sum(mags.values()), 1e-30)
            out[f"hann {nfft}/{hop}, exponent {a}"] = [
                si_sdr(r.stems[d], istft(X * mags[d] / den, nperseg=nfft, noverlap=nfft - hop)[1][:len(r.mix)])
                for d in DRUMS]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="?", default="base,oracleW,oracleWH")
    ap.add_argument("--kits", nargs="+", default=["ElectricEmpireKit", "HardElectro1", "VariBreaks"])
    ap.add_argument("--grooves", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="index of the first validation groove")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--ideal", action="store_true")
    ap.add_argument("--split", default="validation", choices=("validation", "train"))
    a = ap.parse_args()
    preset = load_preset("default")
    rows: dict[str, list] = {}
    for kit_name in a.kits:
        kit = load_kit(Path(KIT_DIR) / kit_name)
        for g in shipped_grooves(a.split)[a.first:a.first + a.grooves]:
            r = render_groove(g, kit, sample_rate=48000, max_seconds=a.seconds)
            notes = [n for n in si.read_score(g, preset) if n.time_s <= len(r.mix) / 48000]
            got = ideal_variants(r, preset) if a.ideal else variants(r, notes, preset, a.variants.split(","))
            for name, vals in got.items():
                rows.setdefault(name, []).append(vals)
                print(f"{kit_name} | {g.stem} | {name} | " + " | ".join(f"{v:.1f}" for v in vals), flush=True)
    print("\nmedian over takes | kick | snare | hihat")
    for name, vals in rows.items():
        print(f"{name} | " + " | ".join(f"{v:.1f}" for v in np.median(np.array(vals), axis=0)))


if __name__ == "__main__":
    main()
