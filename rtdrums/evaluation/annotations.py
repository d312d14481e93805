"""Onset annotations of real recordings: one `time label` per line.

Lines are `<seconds> <label>` separated by spaces, tabs or a comma; blank lines and lines
starting with # are skipped. Labels map to drums through a label map such as
KD=kick,SD=snare,HH=hihat (case-insensitive); labels not in the map are ignored.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import UserError

DEFAULT_LABELS = "KD=kick,SD=snare,HH=hihat"


def parse_label_map(text: str, drums: tuple[str, ...] = ("kick", "snare", "hihat")) -> dict[str, str]:
    """'KD=kick,SD=snare' -> {'kd': 'kick', 'sd': 'snare'}; drums must be among `drums`."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        label, sep, drum = item.partition("=")
        label, drum = label.strip(), drum.strip().lower()
        if not sep or not label or drum not in drums:
            raise UserError(f"bad label map entry {item!r}: write LABEL=DRUM with DRUM one of "
                            f"{', '.join(drums)}, e.g. KD=kick,SD=snare,HH=hihat")
        out[label.lower()] = drum
    if not out:
        raise UserError("empty label map: give e.g. --labels KD=kick,SD=snare,HH=hihat")
    return out


def read_annotations(path: str | os.PathLike, label_map: dict[str, str]) -> dict[str, np.ndarray]:
    """drum -> sorted onset times (s) from a `time label` file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read annotations {path}: {getattr(e, 'strerror', None) or e}") from None
    times: dict[str, list[float]] = {d: [] for d in dict.fromkeys(label_map.values())}
    seen = 0
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[\s,]+", line)
        try:
            t = float(parts[0])
        except ValueError:
            raise UserError(f"{path}:{n}: expected `time label`, got {line!r}") from None
        if len(parts) < 2 or not np.isfinite(t) or t < 0:
            raise UserError(f"{path}:{n}: expected `time label` with time >= 0, got {line!r}")
        drum = label_map.get(parts[1].lower())
        if drum:
            times[drum].append(t)
            seen += 1
    if not seen:
        raise UserError(f"{path}: no onset has a label of the map "
                        f"({', '.join(sorted(label_map))}); set --labels")
    return {d: np.sort(np.array(v, float)) for d, v in times.items()}
