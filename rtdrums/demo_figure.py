"""A picture of what the engine does to the bundled demo groove: the input's spectrum coloured by
the masks, the activations with true onsets and triggers, and the stems.

`rtdrums demo --plot FILE.png` writes it; docs/demo.png is this figure for the default preset.
The masks are the engine's own: each group's model spectrum (W_g h_g)^mask_exp over the sum of
all groups', from the activations h the engine solved in each frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import read_audio, to_mono
from .demo_data import DEMO_AUDIO, DEMO_ONSETS, read_onsets
from .engine import Engine
from .errors import UserError
from .offline import activation_trace, separate
from .preset import load_preset

COLOURS = {"kick": (0.85, 0.15, 0.1), "snare": (0.1, 0.75, 0.2), "hihat": (0.15, 0.4, 1.0),
           "residual": (0.6, 0.6, 0.6)}
WINDOW_S = (2.0, 6.0)        # the stretch of the 12 s groove shown
FREQ_RANGE = (30.0, 20000.0)
ROWS = 240                   # log-spaced frequency rows of the picture
DB_RANGE = 70.0


def model_masks(engine: Engine, h: np.ndarray) -> np.ndarray:
    """(frames, groups, bins) masks the engine applied, from its activations h (frames, R)."""
    t, g = engine.tables, engine.tables.group_start
    model = np.stack([h[:, g[i]:g[i + 1]] @ t.Wt[g[i]:g[i + 1]] for i in range(len(g) - 1)], axis=1)
    model = np.maximum(model, 0.0) ** engine.params.mask_exp
    den = model.sum(axis=1, keepdims=True)
    return np.divide(model, den, out=np.zeros_like(model), where=den > 1e-30)


def input_spectrum(engine: Engine, x: np.ndarray, frames: range) -> np.ndarray:
    """|FFT| of the engine's analysis frames (frame m ends at sample (m + 1) * hop)."""
    s, wa = engine.settings, engine.tables.wa
    out = np.zeros((len(frames), s.n_fft // 2 + 1))
    for i, m in enumerate(frames):
        end = (m + 1) * s.hop
        seg = x[max(0, end - s.n_fft):end]
        seg = np.concatenate([np.zeros(s.n_fft - len(seg), np.float32), seg])
        out[i] = np.abs(np.fft.rfft(seg * wa))
    return out


def figure_target(path) -> Path:
    """path as a Path, or a one-line error when its folder does not exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write the figure to {path}: no folder {path.parent}")
    return path


def save_png(fig, path: Path) -> None:
    """The figure as a 256-colour PNG: a quarter of the size of matplotlib's RGBA one."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=72, format="png")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=256).save(path, optimize=True)


def plot_demo(path: Path, preset: str = "default") -> Path:
    """Write the figure to path (PNG) and return it."""
    path = figure_target(path)
    try:
        import matplotlib
    except ImportError:
        raise UserError("the figure needs matplotlib: pip install 'rtdrums[eval]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, rate = read_audio(DEMO_AUDIO)
    x = to_mono(data)
    engine = Engine(load_preset(preset), rate, max_block=128)
    s = engine.settings
    _, h = activation_trace(engine, x, components=True)
    sep = separate(engine, x, 128)
    names = engine.stem_names
    t0, t1 = WINDOW_S
    frames = range(int(t0 * rate) // s.hop, int(t1 * rate) // s.hop)
    masks = model_masks(engine, h[frames.start:frames.stop])
    mag = input_spectrum(engine, x, frames)

    # one row per log-spaced frequency; colour = the masks' mix, brightness = level in dB
    hz = np.geomspace(*FREQ_RANGE, ROWS)
    bins = np.minimum(np.round(hz / rate * s.n_fft).astype(int), s.n_fft // 2)
    db = 20 * np.log10(np.maximum(mag[:, bins], 1e-12))
    level = np.clip((db - db.max() + DB_RANGE) / DB_RANGE, 0, 1)
    colours = np.array([COLOURS[n] for n in names])
    rgb = np.einsum("fgk,gc->kfc", masks[:, :, bins], colours) * level.T[:, :, None]

    fig, axes = plt.subplots(3, 1, figsize=(11, 8.2), sharex=True,
                             gridspec_kw={"height_ratios": [2.2, 1.6, 1.4]})
    ax = axes[0]
    ax.imshow(np.clip(rgb, 0, 1), aspect="auto", origin="lower", interpolation="nearest",
              extent=(t0, t1, 0, ROWS))
    ticks = [50, 100, 200, 500, 1000, 2000, 5000, 10000]
    ax.set_yticks([np.interp(np.log(f), np.log(hz), np.arange(ROWS)) for f in ticks])
    ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
    ax.set_ylabel("Hz")
    ax.set_title("input spectrum coloured by the engine's masks: "
                 "kick red, snare green, hi-hat blue, residual grey", fontsize=10)

    ax = axes[1]
    t_frames = (np.arange(frames.start, frames.stop) + 1) * s.hop / rate
    g = engine.tables.group_start
    truth = read_onsets(DEMO_ONSETS)
    ev = sep.events
    for d, name in enumerate(names[:-1]):
        act = h[frames.start:frames.stop, g[d]:g[d + 1]].sum(axis=1)
        act = act / max(act.max(), 1e-12) * 0.8 + (2 - d)
        ax.plot(t_frames, act, color=COLOURS[name], lw=0.9)
        on = truth.get(name, np.zeros(0))
        on = on[(on >= t0) & (on <= t1)]
        ax.plot(on, np.full(len(on), 2 - d - 0.08), "|", color="k", ms=7)
        emitted = ev["emitted"][ev["drum"] == d] / rate
        emitted = emitted[(emitted >= t0) & (emitted <= t1)]
        ax.plot(emitted, np.full(len(emitted), 2 - d + 0.9), "v", color=COLOURS[name], ms=5)
    ax.set_yticks([2.4, 1.4, 0.4])
    ax.set_yticklabels(names[:-1])
    ax.set_ylim(-0.2, 3.05)
    ax.set_title("activations h (summed per drum); true onsets | and MIDI note-ons \u25bc "
                 "when they were sent", fontsize=10)

    ax = axes[2]
    n0, n1 = int(t0 * rate), int(t1 * rate)
    t = np.arange(n0, n1) / rate
    for i, name in enumerate(names):
        y = sep.stems[n0:n1, i]
        ax.plot(t, y / max(np.abs(y).max(), 1e-9) * 0.45 + (len(names) - 1 - i), color=COLOURS[name], lw=0.4)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names[::-1])
    ax.set_title("stems (each scaled to its peak); they sum to the input", fontsize=10)
    ax.set_xlabel("time (s)")
    fig.tight_layout()
    try:
        save_png(fig, path)
    except OSError as e:
        raise UserError(f"cannot write the figure to {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
    return path
