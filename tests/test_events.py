"""Trigger CSV: a failed rewrite leaves the previous file whole and nothing half-written."""
from __future__ import annotations

import numpy as np
import pytest

from rtdrums.events import EVENT_DTYPE, read_csv, write_csv

SR = 48000


def _events(n):
    ev = np.zeros(n, EVENT_DTYPE)
    ev["onset"] = np.arange(n) * 4800
    ev["emitted"] = ev["onset"] + 300
    ev["drum"] = np.arange(n) % 3
    ev["note"] = np.array([36, 38, 42])[ev["drum"]]
    ev["velocity"] = 20 + np.arange(n)
    return ev


def test_failed_csv_rewrite_keeps_the_previous_file(tmp_path):
    path = tmp_path / "triggers.csv"
    write_csv(path, _events(5), SR, ("kick", "snare", "hihat"))
    before = path.read_bytes()
    bad = _events(2000)
    bad["drum"][1500] = 7                      # no such drum: fails after 1500 rows
    with pytest.raises(IndexError):
        write_csv(path, bad, SR, ("kick", "snare", "hihat"))
    assert path.read_bytes() == before and len(read_csv(path)) == 5
    assert list(tmp_path.iterdir()) == [path]

