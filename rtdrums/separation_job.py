"""A whole separation job: read a file, run the engine, write stems and triggers atomically."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import read_audio, resample, to_mono, write_audio
from .outputs import OUTPUTS
from .engine import Engine
from .errors import UserError
from .events import write_csv, write_midi
from .offline import Separation, separate
from .paths import ensure_writable_dir
from .dsp.adapt import check_save_target, with_adaptation
from .preset import Preset, load_preset, save_preset

PROGRESS_MIN_SECONDS = 20.0      # show a progress bar for inputs longer than this


@dataclass
class SeparationResult:
    out: Path
    files: list[Path]
    separation: Separation
    sample_rate: int
    duration_s: float
    stem_latency: int             # samples at engine_rate
    preset: str
    engine_rate: int              # the rate the engine ran at: the file's, unless outside the preset's range

    def counts(self) -> dict[str, int]:
        names = self.separation.names
        return {names[d]: int(np.sum(self.separation.events["drum"] == d))
                for d in range(len(names) - 1)}

    def summary(self, elapsed_s: float) -> str:
        lines = [f"separated {self.duration_s:.1f} s at {self.sample_rate} Hz with preset "
                 f"{self.preset} in {elapsed_s:.1f} s ({self.duration_s / max(elapsed_s, 1e-9):.0f}x real time)",
                 "triggers: " + ", ".join(f"{n} {c}" for n, c in self.counts().items()),
                 f"stem latency {self.stem_latency / self.engine_rate * 1000:.1f} ms (removed in the "
                 f"stem files; triggers.csv has each note-on's onset and emission time)"]
        if self.engine_rate != self.sample_rate:
            lines.insert(1, f"the preset runs at {self.engine_rate} Hz: the input was resampled to it "
                            f"and the stems back to {self.sample_rate} Hz")
        lines += [f"wrote {f}" for f in self.files]
        return "\n".join(lines)


def run_separation(input_path: Path, out: Path, preset_name: str | Preset, block: int,
                   progress: bool = False, adapt: bool | None = None,
                   save_adapted: Path | None = None, sampler=None,
                   effects: dict | None = None, on_samples=None, on_rate=None) -> SeparationResult:
    """Separate input_path into out; files appear only when complete (written to a staging folder).
    adapt: switch template adaptation on or off (None: as the preset says); save_adapted: a
    folder for the preset with the templates as adaptation left them; sampler: the [sampler]
    settings (rtdrums.sampler.settings), to write sampler.wav and mix.wav; effects: chains per
    output (rtdrums.effects.parse_effects), to write <output>-fx.wav, each output after its
    chain; both as live plays them. on_samples(n): called as n more samples are separated,
    instead of a progress bar of its own; on_rate(rate): called with the engine's rate first.
    preset_name: a preset's name or folder, or the preset itself (loaded once for many files)."""
    data, rate = read_audio(input_path)
    loaded = preset_name if isinstance(preset_name, Preset) else load_preset(preset_name)
    preset = with_adaptation(loaded, adapt)
    ensure_writable_dir(out)
    check_save_target(save_adapted, preset.adapt.enabled)
    lo, hi = preset.stft.rate_range()
    engine_rate = rate if lo <= rate <= hi else preset.stft.sample_rate
    engine = Engine(preset, engine_rate, max_block=block)
    chains = voices = None
    if effects:
        from .effects import EffectChains
        chains = EffectChains(effects, engine_rate, block)
    if sampler is not None:
        from .sampler.build import build_sampler
        voices = build_sampler(sampler, preset, engine_rate, block)
    x = resample(to_mono(data), rate, engine_rate)
    bar = None
    if on_rate:
        on_rate(engine_rate)
    if progress and on_samples is None and len(x) > PROGRESS_MIN_SECONDS * rate:
        from tqdm import tqdm

        bar = tqdm(total=len(x), unit="sample", unit_scale=True, desc="separating", leave=False)
    try:
        sep = separate(engine, x, block, progress=bar.update if bar else on_samples, sampler=voices,
                       effects=chains)
    finally:
        if bar:
            bar.close()
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".rtdrums-"))
    try:
        stems = resample(sep.stems, engine_rate, rate)[:len(data)]
        for i, name in enumerate(sep.names):
            write_audio(staging / f"{name}.wav", stems[:, i], rate)
        if sep.outputs is not None:           # as live plays them
            played = resample(sep.outputs, engine_rate, rate)[:len(data)]
            if voices is not None:
                write_audio(staging / "sampler.wav", played[:, OUTPUTS.index("sampler")], rate)
                write_audio(staging / "mix.wav", played[:, OUTPUTS.index("mix")], rate)
            for name in chains.boards if chains else ():
                write_audio(staging / f"{name}-fx.wav", played[:, OUTPUTS.index(name)], rate)
        write_csv(staging / "triggers.csv", sep.events, engine_rate, sep.names[:-1])
        write_midi(staging / "triggers.mid", sep.events, engine_rate)
        files = []
        for f in sorted(staging.iterdir()):
            f.replace(out / f.name)
            files.append(out / f.name)
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror}; check free space and permissions") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if save_adapted is not None:
        files.append(save_preset(engine.adapted_preset(f"separate {input_path.name}"), save_adapted))
    return SeparationResult(out, files, sep, rate, len(data) / rate, engine.stem_latency, preset.name,
                            engine_rate)
