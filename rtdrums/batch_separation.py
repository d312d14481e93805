"""`rtdrums separate` on several files or folders: one engine per file, the files spread over the
machine's cores, one progress bar over all of them.

Each file is separated exactly as on its own (rtdrums.separation_job.run_separation, a fresh
engine per file) into OUT/<file name without suffix>/. Files run in threads: the engine's block
call releases the GIL (numba nogil), so the threads use the cores in parallel.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import UserError
from .separation_job import SeparationResult, run_separation

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


def input_files(paths: list[Path]) -> list[Path]:
    """The audio files named, folders expanded to the audio files directly in them (sorted)."""
    files = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise UserError(f"{p} holds no audio file (WAV, FLAC, OGG, AIFF): give files or another folder")
            files += found
        elif not p.exists():
            raise UserError(f"{p}: no such file")
        else:
            files.append(p)
    names: dict[str, Path] = {}
    for f in files:
        if f.stem in names:
            raise UserError(f"{names[f.stem]} and {f} would both write into {f.stem}/: "
                            f"rename one or separate them in two runs")
        names[f.stem] = f
    return files


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def separate_files(files: list[Path], out: Path, preset_name: str, block: int, jobs: int,
                   progress: bool = True, **options) -> tuple[list[SeparationResult], float]:
    """Separate each file into out/<stem>/ on `jobs` threads; (results in the order of files,
    seconds taken). options: run_separation's adapt, sampler, effects."""
    from .preset import load_preset

    preset = load_preset(preset_name)      # once, not per file: its parsing holds the GIL
    bar, lock = None, threading.Lock()
    if progress:
        from tqdm import tqdm

        import soundfile as sf
        total = 0.0
        for f in files:
            try:
                total += sf.info(f).duration
            except (sf.LibsndfileError, RuntimeError):
                pass                       # run_separation reports the unreadable file
        bar = tqdm(total=round(total, 1), unit="s", desc=f"separating {len(files)} files", leave=False)

    def one(f: Path) -> SeparationResult:
        rate = [None]

        def advance(n: int) -> None:
            with lock:
                bar.update(n / rate[0])

        def started(r: int) -> None:
            rate[0] = r
        return run_separation(f, out / f.stem, preset, block, on_samples=advance if bar else None,
                              on_rate=started, **options)

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(one, files))
    finally:
        if bar:
            bar.close()
    return results, time.perf_counter() - t0


def summary(results: list[SeparationResult], elapsed_s: float, jobs: int) -> str:
    audio = sum(r.duration_s for r in results)
    lines = [f"{r.out}: {r.duration_s:.1f} s, triggers " + ", ".join(f"{n} {c}" for n, c in r.counts().items())
             for r in results]
    lines.append(f"separated {len(results)} files ({audio:.1f} s of audio) in {elapsed_s:.1f} s on {jobs} "
                 f"threads: {audio / max(elapsed_s, 1e-9):.0f}x real time")
    return "\n".join(lines)
