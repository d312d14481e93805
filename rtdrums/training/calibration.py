"""Guided calibration without devices: the drums asked for, the takes on disk, what a take says.

A calibration records one take per drum into PRESET_DIR/takes/<folder>/ (the layout `rtdrums
train --hits` reads: kick/, snare/, hihat/, hihat_open/ ...). A take is a session folder of the
live recorder, or any audio file. `analyse_take` finds the strokes with the same splitter
training uses (rtdrums.training.train.split_hits) and lists what is wrong with the take; `training_folder`
leaves out the drums with too few strokes; `write_report` writes calibration.md (and PNGs).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import read_audio, resample, to_mono
from ..errors import UserError
from .train import CATEGORIES, _recordings, split_hits


@dataclass(frozen=True)
class Step:
    folder: str            # sub-folder of takes/ (a train --hits category)
    label: str
    strokes: int
    how: str
    optional: bool = False

    @property
    def category(self) -> str:
        return "hihat_closed" if self.folder == "hihat" else self.folder

    @property
    def drum(self) -> str | None:
        """The preset drum these strokes belong to (None: residual)."""
        return CATEGORIES[self.category][0]

    def prompt(self) -> str:
        return f"{self.label}: {self.strokes} strokes, {self.how}"


STEPS = (
    Step("kick", "kick", 12, "soft to loud"),
    Step("snare", "snare", 12, "soft to loud"),
    Step("hihat", "closed hi-hat", 12, "soft to loud, tip and shank"),
    Step("hihat_open", "open hi-hat", 8, "soft to loud, let each ring briefly"),
    Step("hihat_pedal", "pedal hi-hat", 8, "foot closes, soft to loud"),
    Step("tom", "toms", 12, "every tom, soft to loud", optional=True),
    Step("cymbal", "cymbals", 8, "crash and ride, soft to loud", optional=True),
    Step("other", "side-stick (other)", 8, "side-stick or anything else you play", optional=True),
)
REQUIRED = ("kick", "snare", "hihat")          # training needs these drums
MIN_STROKES = 4                                 # as `rtdrums train` (commands/train.MIN_HITS)
SKIPPED = "SKIPPED"                             # marker file of a drum the player skipped

# warnings (dBFS of sample peaks)
NO_SIGNAL_DB = -60.0       # a take whose peak stays below this has no signal
QUIET_DB = -30.0           # the loudest stroke below this: raise the gain
CLIP = 0.999               # a sample this close to full scale is clipping
SOFT_DB = -6.0             # a soft stroke: this far below the loudest
MIN_SOFT = 3               # soft strokes wanted per take
NEAR_S = 0.05              # a trigger within this of a stroke belongs to it


def db(x: float) -> float:
    return 20 * math.log10(x) if x > 0 else -math.inf


def fmt_db(x: float) -> str:
    return f"{x:.1f} dBFS" if math.isfinite(x) else "-inf dBFS (digital silence)"


@dataclass
class TakeReport:
    """What one take holds: its strokes (start in s, peak dBFS) and the warnings about it."""
    step: Step
    seconds: float = 0.0
    peak: float = 0.0                       # linear
    starts: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    heard: dict[str, int] = field(default_factory=dict)      # preset's triggers on the strokes
    files: list[str] = field(default_factory=list)

    @property
    def strokes(self) -> int:
        return len(self.starts)

    @property
    def trainable(self) -> bool:
        return self.strokes >= MIN_STROKES

    def reason(self) -> str:
        """One line: why this drum is not trained (empty if it is)."""
        if self.trainable:
            return ""
        return (f"{self.step.label}: not trained, {self.strokes} stroke(s) found, "
                f"{MIN_STROKES} needed (its take is kept)")


def find_strokes(x: np.ndarray, sample_rate: int) -> tuple[list[float], list[float]]:
    """Stroke starts (s) and peaks (dBFS) of a take, split as training splits it."""
    hits = split_hits(x, sample_rate)
    if not hits:
        return [], []
    lengths = np.array([len(h) for h in hits])
    first = len(x) - int(lengths.sum())
    starts = (first + np.concatenate([[0], np.cumsum(lengths[:-1])])) / sample_rate
    return [float(s) for s in starts], [db(float(np.max(np.abs(h)))) for h in hits]


def analyse(step: Step, x: np.ndarray, sample_rate: int, channel: str = "the input",
            triggers: list[tuple[float, str]] | None = None, final: bool = True) -> TakeReport:
    """Strokes and warnings of a take (mono float audio). triggers: (time s, drum) of the
    current preset's engine on the same audio, for the wrong-drum and ringing checks. With
    final False (a take still being recorded) only what is already certain is said."""
    x = np.asarray(x, np.float32)
    rep = TakeReport(step, seconds=len(x) / sample_rate, peak=float(np.max(np.abs(x))) if len(x) else 0.0)
    if db(rep.peak) < NO_SIGNAL_DB:
        if final or rep.seconds >= 2.0:
            rep.warnings.append(f"no signal on {channel}: peak {fmt_db(db(rep.peak))} after "
                                f"{rep.seconds:.1f} s; check the cable, the gain and --input-channels")
        return rep
    rep.starts, rep.levels = find_strokes(x, sample_rate)
    w = rep.warnings
    if rep.peak >= CLIP:
        n = int(np.sum(np.abs(x) >= CLIP))
        w.append(f"clipping: peak {fmt_db(db(rep.peak))} ({n} samples at full scale); "
                 "lower the gain and redo")
    if rep.levels and max(rep.levels) < QUIET_DB:
        w.append(f"too quiet on {channel}: loudest stroke {fmt_db(max(rep.levels))}; raise the "
                 "gain (loud strokes should peak around -12 dBFS)")
    if final and rep.strokes < MIN_STROKES:
        w.append(f"too few strokes: {rep.strokes} found, at least {MIN_STROKES} are needed to "
                 f"train the {step.label}")
    elif rep.strokes >= MIN_STROKES and step.folder != "hihat_pedal":
        soft = sum(lv <= max(rep.levels) + SOFT_DB for lv in rep.levels)
        if soft < MIN_SOFT and (final or rep.strokes >= step.strokes):
            w.append(f"too few soft strokes: {soft} of {rep.strokes} are {-SOFT_DB:.0f} dB or more "
                     "below the loudest; play some softer ones, or soft notes get wrong velocities")
    if triggers is not None:
        w += _trigger_checks(rep, triggers)
    return rep


def _trigger_checks(rep: TakeReport, triggers: list[tuple[float, str]]) -> list[str]:
    """Wrong drum (the current preset hears most strokes as another drum) and another drum
    ringing (the preset triggers another drum away from every stroke)."""
    out = []
    starts = np.array(rep.starts)
    near = [(t, d) for t, d in triggers if starts.size and np.min(np.abs(starts - t)) <= NEAR_S]
    away = [d for t, d in triggers if not starts.size or np.min(np.abs(starts - t)) > NEAR_S]
    heard: dict[str, int] = {}
    for s in starts:
        drums = {d for t, d in near if abs(t - s) <= NEAR_S}
        for d in drums:
            heard[d] = heard.get(d, 0) + 1
    rep.heard = heard
    target = rep.step.drum
    if target is not None and rep.strokes >= MIN_STROKES:
        mine = heard.get(target, 0)
        other, n = max(((d, k) for d, k in heard.items() if d != target), key=lambda a: a[1],
                       default=(None, 0))
        if other is not None and n > rep.strokes / 2 and n > mine:
            out.append(f"wrong drum? the current preset hears {n} of {rep.strokes} strokes as "
                       f"{other} (as {target}: {mine}); play the {rep.step.label}, or redo")
    ringing = {d: away.count(d) for d in set(away) if d != target}
    if ringing:
        d, n = max(ringing.items(), key=lambda a: a[1])
        if n >= 2:
            out.append(f"another drum ringing? the current preset heard {d} {n} times between the "
                       "strokes; damp the other drums and redo")
    return out


def read_take(path: Path, sample_rate: int) -> np.ndarray:
    data, rate = read_audio(path)
    return resample(to_mono(data), rate, sample_rate).astype(np.float32)


def take_triggers(session: Path) -> list[tuple[float, str]] | None:
    """(onset s, drum) of the triggers a live session recorded, None if it has none."""
    from ..events import read_csv
    csv = session / "triggers.csv"
    if not csv.is_file():
        return None
    return [(float(r["onset_s"]), str(r["instrument"])) for r in read_csv(csv)]


def analyse_folder(step: Step, folder: Path, sample_rate: int, channel: str = "the input") -> TakeReport:
    """A drum's take folder: its recordings joined (with a second of silence between)."""
    files = _recordings(folder) if folder.is_dir() else []
    parts, triggers, offset = [], [], 0.0
    gap = np.zeros(sample_rate, np.float32)
    for f in files:
        x = read_take(f, sample_rate)
        trig = take_triggers(f.parent) if (f.parent / "session.json").is_file() else None
        triggers += [(t + offset, d) for t, d in trig or []]
        parts += [x, gap]
        offset += (len(x) + len(gap)) / sample_rate
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    rep = analyse(step, x, sample_rate, channel, triggers if triggers else None)
    rep.files = [str(f.relative_to(folder.parent)) for f in files]
    return rep


# -- the takes folder --------------------------------------------------------------------------
def has_take(takes: Path, step: Step) -> bool:
    """A drum is done when it has a recording, or was skipped."""
    folder = takes / step.folder
    return folder.is_dir() and (bool(_recordings(folder)) or (folder / SKIPPED).exists())


def mark_skipped(takes: Path, step: Step) -> None:
    folder = takes / step.folder
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / SKIPPED).write_text("skipped during calibration\n")


def check_takes_folder(takes: Path) -> None:
    """A --takes folder must hold at least one drum folder with audio."""
    if not takes.is_dir():
        raise UserError(f"--takes {takes}: no such folder; give the takes/ folder of an earlier "
                        "calibration (kick/, snare/, hihat/ ... inside)")
    if not any((takes / s.folder).is_dir() and _recordings(takes / s.folder) for s in STEPS):
        raise UserError(f"--takes {takes}: no recordings in sub-folders named "
                        f"{', '.join(s.folder for s in STEPS)}")


def training_folder(takes: Path, reports: list[TakeReport], work: Path) -> Path:
    """A folder of links to the take folders of the drums with enough strokes (what train
    --hits reads); UserError if kick, snare or closed hi-hat lack strokes."""
    by_folder = {r.step.folder: r for r in reports}
    short = [by_folder[f] for f in REQUIRED if f in by_folder and not by_folder[f].trainable]
    absent = [f for f in REQUIRED if f not in by_folder]
    if short or absent:
        why = [f"{r.step.label} has {r.strokes} stroke(s)" for r in short] + \
              [f"{f} has no take" for f in absent]
        raise UserError(f"cannot train: {'; '.join(why)} ({MIN_STROKES} needed each); delete "
                        f"those folders in {takes} and record them again with --resume")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for r in reports:
        if r.trainable:
            (work / r.step.folder).symlink_to((takes / r.step.folder).resolve(), target_is_directory=True)
    return work


# -- the report ----------------------------------------------------------------------------------
def crosstalk_matrix(preset) -> tuple[list[str], np.ndarray]:
    """Groups (drums, residual) and M[g, d]: drum d's rise per unit rise of group g when only g
    is struck (as train.calibrate measured it)."""
    names = list(preset.drum_names) + ["residual"]
    cols = [d.leak for d in preset.drums] + [preset.residual_leak]
    return names, np.array(cols, float).T


def write_report(out: Path, reports: list[TakeReport], preset, sample_rate: int, takes: Path,
                 wall: dict[str, float] | None = None) -> tuple[Path, list[str]]:
    """PRESET_DIR/calibration.md, and the PNGs if matplotlib is there; returns (path, notes)."""
    lines = ["# Calibration report", "", f"Preset: `{out}`; takes: `{takes}`; sample rate {sample_rate} Hz.",
             "", "## Strokes per drum", "",
             "| drum | take folder | strokes | asked | loudest | softest | trained | warnings |",
             "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lv = r.levels
        hi = fmt_db(max(lv)) if lv else "-"
        lo = fmt_db(min(lv)) if lv else "-"
        trained = "yes" if r.trainable else "no"
        warn = "; ".join(r.warnings) or "-"
        lines.append(f"| {r.step.label} | {r.step.folder}/ | {r.strokes} | {r.step.strokes} | {hi} | "
                     f"{lo} | {trained} | {warn} |")
    skipped = [s.label for s in STEPS if s.folder not in {r.step.folder for r in reports}]
    if skipped:
        lines += ["", f"Skipped or not recorded: {', '.join(skipped)}."]
    names, M = crosstalk_matrix(preset)
    lines += ["", "## Cross-talk matrix", "",
              "Row: the group struck alone; column: how far that drum's activation rises, relative "
              "to its own full-velocity rise, per unit rise of the struck group (90th percentile "
              "over the strokes; 0 = none). Large values make that drum need a wider margin.", "",
              "| struck \\ rises | " + " | ".join(names[:-1]) + " | residual |",
              "|---" * (len(names) + 1) + "|"]
    for g, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(f"{M[g, d]:.3f}" for d in range(len(names))) + " |")
    tuning = preset.provenance.get("trigger_tuning")
    if tuning:
        f = ", ".join(f"{d} {v:.2f}" for d, v in tuning["f_measure_50ms"].items())
        lines += ["", f"Triggers tuned on {len(tuning['grooves'])} grooves played with these takes: "
                      f"F (50 ms) {f}."]
    lines += ["", "Learned trigger: " + ("yes" if preset.onset_model is not None else
                                         "no (threshold detector)") + "."]
    notes = []
    pngs = write_plots(out, reports, preset, sample_rate, takes)
    if pngs:
        lines += ["", "## Pictures", ""] + [f"![{p.stem}]({p.name})" for p in pngs]
    else:
        notes.append("matplotlib is not installed: no PNGs in the report (pip install matplotlib)")
        lines += ["", notes[-1] + "."]
    if wall:
        lines += ["", "## Wall time", ""] + [f"- {k}: {v:.1f} s" for k, v in wall.items()]
    path = out / "calibration.md"
    path.write_text("\n".join(lines) + "\n")
    return path, notes


def write_plots(out: Path, reports: list[TakeReport], preset, sample_rate: int, takes: Path) -> list[Path]:
    """templates.png (each template's spectrum) and strokes.png (each drum's strokes, aligned
    on their starts); [] without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    W = preset.W
    freqs = np.arange(W.shape[0]) * sample_rate / preset.stft.n_fft
    owners = [d.name for d in preset.drums for _ in range(d.components)] + \
             [f"residual:{lab}" for lab in preset.residual_labels]
    labels = [lab for d in preset.drums for lab in d.labels] + list(preset.residual_labels)
    fig, ax = plt.subplots(figsize=(10, 6))
    im = ax.imshow(20 * np.log10(W / W.max() + 1e-6), aspect="auto", origin="lower",
                   extent=(-0.5, W.shape[1] - 0.5, 0, freqs[-1] / 1000), vmin=-80, vmax=0, cmap="magma")
    ax.set_xticks(range(W.shape[1]))
    ax.set_xticklabels([f"{o.split(':')[0]}\n{lab}" for o, lab in zip(owners, labels)], fontsize=6,
                       rotation=90)
    ax.set_ylabel("kHz")
    ax.set_title(f"templates of {preset.name} (dB re the largest value)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths = [out / "templates.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)
    shown = [r for r in reports if r.strokes]
    if shown:
        fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.6 * len(shown)), squeeze=False)
        for ax, r in zip(axes[:, 0], shown):
            x = np.concatenate([read_take(takes / f, sample_rate) for f in r.files] or [np.zeros(0)])
            t = np.arange(len(x)) / sample_rate
            ax.plot(t, x, lw=0.4, color="0.3")
            for s in r.starts:
                ax.axvline(s, color="tab:red", lw=0.6)
            ax.set_ylabel(r.step.folder, fontsize=7)
            ax.set_ylim(-1, 1)
            ax.tick_params(labelsize=6)
        axes[-1, 0].set_xlabel("s (red: strokes found)")
        fig.tight_layout()
        paths.append(out / "strokes.png")
        fig.savefig(paths[1], dpi=90)
        plt.close(fig)
    return paths


def save_reports(out: Path, reports: list[TakeReport]) -> None:
    """The stroke counts as JSON too (calibration.json), for scripts."""
    doc = {r.step.folder: {"strokes": r.strokes, "levels_dbfs": [round(v, 2) for v in r.levels],
                           "trained": r.trainable, "warnings": r.warnings, "heard": r.heard}
           for r in reports}
    (out / "calibration.json").write_text(json.dumps(doc, indent=2) + "\n")
