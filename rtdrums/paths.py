"""Output folders: checked before any long work, so a bad --out fails at once."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import UserError


def ensure_writable_dir(folder: Path, option: str = "--out") -> None:
    """Create folder if needed and prove a file can be written in it; UserError otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rtdrums-write-test"):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {folder}: {e.strerror}; choose a writable {option} folder") from None
