"""The recorder: callback-side ring, writer process, files valid in every ending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf

from rtdrums.events import EVENT_DTYPE, read_csv
from rtdrums.host.recorder import Recorder

SR, BLOCK = 48000, 128
STEMS, DRUMS = ("kick", "snare", "hihat", "residual"), ("kick", "snare", "hihat")


def _signal(n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n).astype(np.float32) * 0.1
    stems = np.stack([x * g for g in (0.5, 0.25, 0.125, 0.0625)], axis=1).astype(np.float32)
    return x, stems


def _push_all(rec, x, stems, pace=0.0):
    ev = np.zeros(4, EVENT_DTYPE)
    for i, pos in enumerate(range(0, len(x), BLOCK)):
        n = 0
        if i % 50 == 10:
            ev[0] = (pos + 3, pos + BLOCK, 1, 38, 64 + i % 60, pos + 5)
            n = 1
        rec.push(x[pos:pos + BLOCK], stems[pos:pos + BLOCK], ev, n, pos)
        if pace:
            time.sleep(pace)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_roundtrip(tmp_path, fmt):
    x, stems = _signal(BLOCK * 400)
    rec = Recorder(tmp_path / "s", SR, BLOCK, STEMS, DRUMS, 255, fmt, buffer_s=10)
    rec.start()
    _push_all(rec, x, stems)
    rec.stop(extra={"stats": {"note": "ok"}})
    assert rec.error is None and rec.dropped == 0
    assert rec.frames == len(x) and rec.events == 8          # what the host shows
    meta = json.loads((tmp_path / "s" / "session.json").read_text())
    assert meta["status"] == "complete" and meta["frames"] == len(x) and meta["events"] == 8
    assert meta["stem_latency_samples"] == 255 and meta["stats"] == {"note": "ok"}
    tol = 0 if fmt == "wav" else 2.0 ** -22
    y, sr = sf.read(tmp_path / "s" / f"input.{fmt}", dtype="float32")
    assert sr == SR and np.max(np.abs(y - x)) <= tol
    for k, s in enumerate(STEMS):
        y = sf.read(tmp_path / "s" / f"{s}.{fmt}", dtype="float32")[0]
        assert np.max(np.abs(y - stems[:, k])) <= tol
    rows = read_csv(tmp_path / "s" / "triggers.csv")
    assert len(rows) == 8 and rows[0]["instrument"] == "snare"
    assert rows[0]["onset_s"] == pytest.approx((10 * BLOCK + 3) / SR, abs=1e-6)
    assert (tmp_path / "s" / "triggers.mid").stat().st_size > 20
    assert not list((tmp_path / "s").glob("*.part"))


def test_full_ring_drops_blocks_and_keeps_files_aligned(tmp_path):
    x, stems = _signal(BLOCK * 3000)
    rec = Recorder(tmp_path / "s", SR, BLOCK, STEMS, DRUMS, 255, "wav", buffer_s=0.01)  # 16 slots
    rec.start()
    _push_all(rec, x, stems)                 # far faster than real time: the ring overflows
    dropped = rec.dropped
    rec.stop()
    meta = json.loads((tmp_path / "s" / "session.json").read_text())
    assert dropped > 0 and meta["dropped_blocks"] == dropped
    assert sum(g[1] for g in meta["gaps"]) <= dropped * BLOCK
    y = sf.read(tmp_path / "s" / "input.wav", dtype="float32")[0]
    k = sf.read(tmp_path / "s" / "kick.wav", dtype="float32")[0]
    assert len(y) == len(k) == meta["frames"]
    kept = np.ones(len(y), bool)
    for start, n in meta["gaps"]:
        assert not y[start:start + n].any()       # a gap is silence in every file
        kept[start:start + n] = False
    np.testing.assert_array_equal(y[kept], x[:len(y)][kept])
    np.testing.assert_array_equal(k[kept], stems[:len(y), 0][kept])


DISK_FULL = textwrap.dedent('''
    import resource, signal, sys, time
    import numpy as np
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit fails (EFBIG)
    from rtdrums.host.recorder import Recorder
    from rtdrums.events import EVENT_DTYPE
    rec = Recorder(sys.argv[1], 48000, 128, ("kick", "snare", "hihat", "residual"),
                   ("kick", "snare", "hihat"), 255, "wav")
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))   # the writer inherits it
    rec.start()
    x = np.full(128, 0.25, np.float32); s = np.zeros((128, 4), np.float32)
    ev = np.zeros(1, EVENT_DTYPE)
    for i in range(1500):                              # 4 s: 768 kB per file > 300 kB
        rec.push(x, s, ev, 0, i * 128)
        if i % 100 == 0:
            time.sleep(0.06); rec.poll()
    time.sleep(0.3)
    print("ERROR", rec.poll()); sys.stdout.flush()
    rec.stop()
    print("DONE", rec.error)
''')


def test_write_failure_stops_recording_only(tmp_path):
    r = subprocess.run([sys.executable, "-c", DISK_FULL, str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ERROR recording stopped at" in r.stdout and "audio and MIDI go on" in r.stdout
    for name in ("input", "kick", "residual"):
        info = sf.info(tmp_path / "s" / f"{name}.wav")       # closed, readable, header right
        data = sf.read(tmp_path / "s" / f"{name}.wav", dtype="float32")[0]
        assert info.frames == len(data) > 10_000
    meta = json.loads((tmp_path / "s" / "session.json").read_text())
    assert meta["status"].startswith("recording stopped at")


KILLED_HOST = textwrap.dedent('''
    import sys, time
    import numpy as np
    from rtdrums.host.recorder import Recorder
    from rtdrums.events import EVENT_DTYPE
    rec = Recorder(sys.argv[1], 48000, 128, ("kick", "snare", "hihat", "residual"),
                   ("kick", "snare", "hihat"), 255, "wav")
    rec.start()
    x = np.full(128, 0.25, np.float32); s = np.zeros((128, 4), np.float32)
    ev = np.zeros(1, EVENT_DTYPE)
    for i in range(750):
        rec.push(x, s, ev, 0, i * 128)
    print("PUSHED", flush=True)
    time.sleep(60)
''')


def test_files_are_finished_when_the_host_is_killed(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", KILLED_HOST, str(tmp_path / "s")],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "PUSHED"
    time.sleep(0.5)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    meta = tmp_path / "s" / "session.json"
    for _ in range(100):                     # the writer notices and finishes on its own
        if meta.exists() and json.loads(meta.read_text())["status"] != "recording":
            break
        time.sleep(0.1)
    assert json.loads(meta.read_text())["status"] == "complete"
    assert sf.info(tmp_path / "s" / "input.wav").frames == 750 * 128


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full(tiny_disk):
    x = np.full(BLOCK * 1500, 0.25, np.float32)
    stems = np.zeros((len(x), 4), np.float32)
    rec = Recorder(tiny_disk / "s", SR, BLOCK, STEMS, DRUMS, 255, "wav")
    rec.start()
    _push_all(rec, x, stems, pace=0.0005)
    for _ in range(50):
        if rec.poll():
            break
        time.sleep(0.05)
    assert rec.error and "disk full" in rec.error and "audio and MIDI go on" in rec.error
    _push_all(rec, x[:BLOCK * 10], stems[:BLOCK * 10])     # pushing on is harmless
    rec.stop()
    meta = json.loads((tiny_disk / "s" / "session.json").read_text())
    assert "disk full" in meta["status"]
    assert rec.frames == meta["frames"] < len(x)            # the view shows what was kept
    for name in ("input",) + STEMS:
        f = tiny_disk / "s" / f"{name}.wav"
        assert sf.info(f).frames == len(sf.read(f)[0]) > BLOCK * 100
    assert not list((tiny_disk / "s").glob("*.part"))
