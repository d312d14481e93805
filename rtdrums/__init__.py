"""rtdrums: real-time drum decomposition by NMF with fixed templates.

A streaming engine holds pretrained spectral templates W and solves, frame by frame, only for the
activations h >= 0; soft masks split the input into kick, snare, hi-hat and residual stems, and a
causal peak picker turns the activations into MIDI triggers.
"""

__version__ = "0.1.0"


def _configure_numba_cache() -> None:
    """Keep compiled kernels in a cache folder named by a hash of the kernel sources.

    Numba checks only the timestamp of a cached function's own file, not of the modules it calls
    into, so an edited helper kernel could run against stale machine code. A fresh folder per
    source hash rules that out. NUMBA_CACHE_DIR, if set, is left alone.
    """
    import hashlib
    import os
    from pathlib import Path

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for path in sorted(here.rglob("*.py")):      # every module that holds kernels, subpackages too
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if b"njit" in source:
            digest.update(path.relative_to(here).as_posix().encode() + source)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rtdrums" / "numba"
    os.environ["NUMBA_CACHE_DIR"] = str(base / digest.hexdigest()[:16])


_configure_numba_cache()
