"""Saving a preset and editing the arrays of its templates.npz, as a damaged or older file would be."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from rtdrums.preset import save_preset


def saved_with_arrays_edited(preset, folder: Path, edit: Callable[[dict], object]) -> Path:
    """preset saved to folder, then its templates.npz rewritten with edit(arrays) applied in place."""
    folder = save_preset(preset, folder)
    with np.load(folder / "templates.npz") as z:
        arrays = dict(z)
    edit(arrays)
    np.savez(folder / "templates.npz", **arrays)
    return folder
