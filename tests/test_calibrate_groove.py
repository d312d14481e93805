"""`rtdrums calibrate --groove`: the shipped pattern and its click, the take on a JACK dummy server
(a player client that plays a rendered groove to the click it hears), training from a groove take
with a player's timing, and the bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtdrums.host.harness import Harness
from rtdrums.training.groove_pattern import (LEAD_IN_S, click_frames, click_track, load_pattern,
                                             take_layout, take_notes, write_notes)
from rtdrums.training.render import load_groove, render_groove
from test_calibrate import AUDIO, CALIBRATE, HOST, TUNE, Calibration, _cli, _f_scores

SR = 48000
TOLERANCE_S = 0.05                 # train --groove's default --score-tolerance
COUNT_IN = 4


def test_shipped_pattern_covers_the_kit_soft_to_loud():
    p = load_pattern()
    assert (p.bpm, p.bars) == (100.0, 4)
    counts = p.drum_counts()
    assert counts == {"kick": 13, "snare": 16, "hihat_closed": 17, "hihat_open": 8, "hihat_pedal": 8}
    for drum in (36, 38, 42):
        v = [vel for _, n, vel in p.notes if n == drum]
        assert min(v) <= 50 and max(v) >= 110, (drum, v)      # soft to loud
    assert load_pattern(bpm=80).beat_s == pytest.approx(0.75)


def test_click_accents_downbeats_at_the_beat_frames():
    p = load_pattern(bpm=120)
    click = click_track(p, SR, COUNT_IN, -12.0)
    start, total = take_layout(p, SR, COUNT_IN)
    assert len(click) == total and start == int((LEAD_IN_S + 2.0) * SR)
    frames = click_frames(p, SR, COUNT_IN)
    assert len(frames) == COUNT_IN + 16 and frames[COUNT_IN] == (start, True)
    assert not np.any(click[:frames[0][0]]) and not np.any(click[frames[-1][0] + SR // 10:])
    for at, accent in frames:
        peak = np.max(np.abs(click[at:at + SR // 20]))
        assert 20 * np.log10(peak) == pytest.approx(-12.0 if accent else -18.0, abs=0.3)
    assert [a for _, a in frames[:COUNT_IN + 5]] == [True, False, False, False] + [True, False, False, False, True]


def test_take_notes_follow_the_count_in_and_the_latency(tmp_path):
    p = load_pattern()
    notes = take_notes(p, COUNT_IN, 0.010)
    assert notes[0][0] == pytest.approx(LEAD_IN_S + 2.4 + 0.010)
    path = write_notes(notes, tmp_path / "take.mid")
    back = load_groove(path)
    assert [(n, v) for _, n, v in back] == [(n, v) for _, n, v in sorted(notes, key=lambda a: (a[0], a[1]))]
    assert np.allclose([t for t, _, _ in back], sorted(t for t, _, _ in notes), atol=1e-3)


def groove_take(kit, folder: Path, jitter_ms: float = 8.0, seed: int = 0, bpm: float | None = None,
                pattern: Path | None = None) -> Path:
    """A take as the live form writes it: the shipped pattern played with kit after the lead-in
    and count-in, each note moved by up to +-jitter_ms (uniform, seeded), the score unmoved;
    quiet room noise. take.wav + take.mid in folder."""
    p = load_pattern(pattern, bpm=bpm)
    notes = take_notes(p, COUNT_IN, 0.0)
    rng = np.random.default_rng(seed)
    played = [(t + rng.uniform(-jitter_ms, jitter_ms) / 1000, n, v) for t, n, v in notes]
    folder.mkdir(parents=True, exist_ok=True)
    r = render_groove(write_notes(played, folder / "played.mid"), kit, SR)
    (folder / "played.mid").unlink()
    _, total = take_layout(p, SR, COUNT_IN)
    x = np.zeros(total, np.float32)
    x[:min(total, len(r.mix))] = r.mix[:total]
    x += rng.normal(0, 1e-5, total).astype(np.float32)
    sf.write(folder / "take.wav", 0.5 * x, SR, subtype="FLOAT")
    write_notes(notes, folder / "take.mid")
    return folder


# -- bad input, one line each ----------------------------------------------------------------------
def _one_line(r, start: str) -> str:
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    err = r.stderr.strip()
    assert "\n" not in err and err.startswith("rtdrums calibrate: error: "), err
    assert start in err, err
    return err


def test_pattern_without_kick_snare_hihat_is_one_line(tmp_path, groove_file):
    toms = groove_file([(0.0, 45, 100), (0.5, 49, 100), (1.0, 38, 90)], "toms.mid")
    r = _cli("--groove", toms, "--out", tmp_path / "p", input="")
    _one_line(r, f"the pattern {toms} has no kick or hi-hat notes (pitches found: 38, 45, 49)")
    assert "next:" not in r.stdout


@pytest.mark.parametrize("option, start", [
    (["--click-level", "3"], "--click-level 3: the click's peak in dBFS, from -60 to 0"),
    (["--click-channels", "0"], "--click-channels '0': give output channels counted from 1"),
    (["--bpm", "500"], "--bpm 500: give a tempo between 30 and 300")])
def test_bad_click_options_are_one_line(tmp_path, option, start):
    _one_line(_cli("--groove", *option, "--out", tmp_path / "p", input=""), start)


def test_silent_take_is_one_line(tmp_path):
    folder = tmp_path / "takes" / "groove"
    folder.mkdir(parents=True)
    sf.write(folder / "take.wav", np.zeros(5 * SR, np.float32), SR, subtype="FLOAT")
    write_notes(take_notes(load_pattern(), COUNT_IN, 0.0), folder / "take.mid")
    r = _cli("--groove", "--takes", tmp_path / "takes", "--out", tmp_path / "p")
    _one_line(r, "no signal on the take: peak -inf dBFS (digital silence) after 5.0 s")


def test_takes_folder_without_a_take_is_one_line(tmp_path):
    (tmp_path / "takes").mkdir()
    r = _cli("--groove", "--takes", tmp_path / "takes", "--out", tmp_path / "p")
    _one_line(r, "no groove take in it")


# -- training from a groove take (no device) -------------------------------------------------------
def test_takes_path_trains_from_a_played_groove(fixture_kit, tmp_path, validation_grooves):
    """The shipped pattern played with the fixture kit, each note up to 8 ms off the score; the
    preset's triggers on the four validation grooves rendered with that kit (30 s each, pooled).

    Fast training (threshold detector tuned on one training groove). Measured: kick 0.928, snare
    0.827, hi-hat 0.757; the soundcheck path with the same kind of training reaches 0.911 / 0.837 /
    0.803 (docs/calibration.md). The floors are these measurements less about 0.03."""
    takes = tmp_path / "takes"
    groove_take(fixture_kit, takes / "groove")
    out = tmp_path / "preset"
    r = _cli("--groove", "--takes", takes, "--out", out, "--trigger", "threshold", "--tune-grooves", TUNE[0])
    assert r.returncode == 0, r.stderr
    assert "learnt " in r.stdout and "calibration done in" in r.stdout
    report = (out / "calibration.md").read_text()
    assert "# Calibration report (groove)" in report and "## Cross-talk matrix" in report
    import json
    doc = json.loads((out / "calibration.json").read_text())["groove"]
    assert abs(doc["score_offset_ms"]) <= 10 and doc["notes_matched"] >= 0.8, doc
    f = _f_scores(out, fixture_kit, validation_grooves, 30.0)
    print("F per drum:", {d: round(v, 3) for d, v in f.items()})
    assert f["kick"] >= 0.89 and f["snare"] >= 0.79 and f["hihat"] >= 0.72, f


# -- on a JACK dummy server ------------------------------------------------------------------------
class Player(Harness):
    """Records what arrives on its inputs; once the first click arrives, plays `stim` so that its
    sample 0 is `after` samples after that click's first sample, as a player playing to the click.
    (The harness's own process callback, with the click detection added.)"""

    def follow(self, stim: np.ndarray, after: int, click_k0: int | None, frames: int) -> None:
        """click_k0: index of the click's first sample above 1e-3; None: play at once."""
        self.stim = np.asarray(stim, np.float32)[:, None]
        self.rec = np.zeros((frames, len(self.ins)), np.float32)
        self.after, self.k0 = after, click_k0
        self.first = 0 if click_k0 is None else None
        self.pos, self.start_frame = 0, None
        self.cycle_frame = self.cycle_pos = np.zeros(0, np.int64)
        self.cycles = 0
        self.done.clear()
        self.xruns = 0
        self.armed.set()

    def _process(self, frames: int) -> None:
        if not self.armed.is_set() or self.done.is_set():
            for p in self.outs:
                p.get_array()[:] = 0
            return
        p = self.pos
        m = min(frames, len(self.rec) - p)
        x = self.ins[0].get_array()
        for c, port in enumerate(self.ins):
            self.rec[p:p + m, c] = port.get_array()[:m]
        if self.first is None:
            k = np.flatnonzero(np.abs(x) > 1e-3)
            if k.size:
                self.first = p + int(k[0]) - self.k0
        buf = self.outs[0].get_array()
        buf[:] = 0
        if self.first is not None:
            s0 = p - (self.first + self.after)            # stim index at this cycle's first frame
            lo, hi = max(0, -s0), min(frames, len(self.stim) - s0)
            if hi > lo:
                buf[lo:hi] = self.stim[s0 + lo:s0 + hi, 0]
        self.pos = p + frames
        if self.pos >= len(self.rec):
            self.done.set()


def _wire_groove(player, outputs: bool = True) -> None:
    """Player out_0 -> every input port of the calibration (each stream adds its own), and its
    last two output ports (the click channels) -> player in_0, in_1."""
    from jackrig import wait_ports
    for name in wait_ports(player.client, f"{HOST}:in_.*", 1):
        player.connect(player.outs[0].name, name)
    if outputs:
        outs = wait_ports(player.client, f"{HOST}:out_.*", 2)
        for i, name in enumerate(outs[-2:]):
            player.connect(name, player.ins[i].name)


@pytest.mark.jack
def test_groove_take_on_jack(jack_server, fixture_kit, validation_grooves, tmp_path):
    """The click arrives at the player's ports bit for bit as synthesised (count-in and accents at
    their frames, on both click channels); the player plays the pattern rendered with the fixture
    kit to it; the take is written with the pattern moved onto its time line, every note within
    the alignment's tolerance of where it was played; training (the fast form) writes the preset
    and the closing check shows its triggers on a validation groove the player plays."""
    from jackrig import find_take
    p = load_pattern()
    click = click_track(p, SR, COUNT_IN, -12.0)
    first_click = click_frames(p, SR, COUNT_IN)[0][0]
    k0 = int(np.flatnonzero(np.abs(click) > 1e-3)[0]) - first_click
    start, total = take_layout(p, SR, COUNT_IN)
    played = groove_take(fixture_kit, tmp_path / "rendered", jitter_ms=0.0)
    stim = sf.read(played / "take.wav", dtype="float32")[0][start - int(0.05 * SR):total - SR // 2]
    out = tmp_path / "mykit"
    player = Player("player", n_out=1, n_in=2, midi=False)
    cal = Calibration(["--groove", "--out", out, *AUDIO, "--click-channels", "1,2", "--check-seconds", 30,
                       "--trigger", "threshold", "--tune-grooves", *TUNE], jack_server.env)
    try:
        for attempt in range(3):          # a take disturbed by a JACK xrun is played again (redo)
            cal.wait_for("next: groove: 4 bars at 100 bpm after 4 beats of count-in")
            player.follow(stim, start - first_click - int(0.05 * SR), k0, total + SR)
            cal.say()
            cal.wait_for("groove take: 4 beats count-in, then 4 bars at 100 bpm")
            _wire_groove(player)
            assert player.done.wait(60)
            line = cal.wait_for("groove: ")
            assert line.startswith("groove: 14.5 s recorded, peak "), line
            rec = player.rec.copy()
            cal.wait_for("Enter = train with this take")
            if player.xruns == 0 and "overflows" not in line:
                break
            print(f"take {attempt + 1} disturbed: {player.xruns} xruns at the player; {line}")
            cal.say("redo")
        else:
            pytest.fail("3 takes in a row were disturbed by JACK xruns")
        cal.say()
        cal.wait_for("wrote ")
        cal.wait_for("check: play a groove")
        check = render_groove(validation_grooves[2], fixture_kit, SR, max_seconds=6.0).mix
        player.follow(check, 0, None, len(check) + SR // 2)
        _wire_groove(player, outputs=False)
        assert player.done.wait(60)
        cal.say()
        line = cal.wait_for("check: kick")
        rc = cal.finish()
    finally:
        if cal.proc.poll() is None:
            cal.proc.kill()
        player.close()
    assert rc == 0, "\n".join(cal.lines)
    print(next(ln for ln in cal.lines if ln.startswith("calibration done in")))
    counts = dict(item.rsplit(" ", 1) for item in line[len("check: "):].split(" triggers")[0].split(", "))
    assert all(int(counts[d]) > 0 for d in ("kick", "snare", "hihat")), line
    assert (out / "preset.toml").is_file() and (out / "calibration.md").is_file()
    heard = click[first_click:]
    for c in (0, 1):                                 # both click channels, bit for bit
        at_click = find_take(rec[:, c], heard)
        assert len(at_click) == 1, c
        for at, accent in click_frames(p, SR, COUNT_IN):   # count-in and accents where expected
            got = rec[at_click[0] + at - first_click:at_click[0] + at - first_click + SR // 20, c]
            assert 20 * np.log10(np.max(np.abs(got))) == pytest.approx(-12.0 if accent else -18.0, abs=0.1)
    folder = out / "takes" / "groove"
    take = sf.read(folder / "take.wav", dtype="float32")[0]
    assert len(take) == total
    at = find_take(take, stim)
    assert len(at) == 1, "the played groove is not in the take"
    import json
    info = json.loads((folder / "take.json").read_text())
    truth = np.array([t for t, _, _ in load_groove(played / "take.mid")]) - start / SR + \
        (at[0] + int(0.05 * SR)) / SR
    written = np.array([t for t, _, _ in load_groove(folder / "take.mid")])
    err = written - np.sort(truth)
    print(f"take.mid - played onsets: median {1e3 * np.median(err):+.1f} ms, max |.| "
          f"{1e3 * np.max(np.abs(err)):.1f} ms; latency reported {info['latency_in_ms']} + "
          f"{info['latency_out_ms']} ms")
    assert np.max(np.abs(err)) <= TOLERANCE_S


@pytest.mark.jack
def test_click_channel_the_device_lacks_is_one_line(jack_server, tmp_path):
    import subprocess
    r = subprocess.run(CALIBRATE + ["--groove", "--out", str(tmp_path / "p"), *map(str, AUDIO),
                                    "--click-channels", "9"], input="", capture_output=True, text=True,
                       env=jack_server.env, timeout=300)
    err = _one_line(r, "--click-channels: output channel 9 is out of range: ")
    assert "has output channels 1..8" in err and "next:" not in r.stdout


@pytest.mark.jack
def test_redo_discards_and_no_signal_warns_on_jack(jack_server, tmp_path):
    """`redo` during a take starts again; a take with nothing on the input (the dummy server's
    capture is silent) warns with the channel and the level and is asked for again; `quit`
    stops with the take kept."""
    out = tmp_path / "p"
    cal = Calibration(["--groove", "--out", out, *AUDIO, "--click-channels", "2"], jack_server.env)
    try:
        cal.wait_for("next: groove:")
        cal.say()
        cal.wait_for("groove take: ")
        cal.say("redo")
        cal.wait_for("groove: take discarded, again")
        cal.wait_for("next: groove:")
        cal.say()
        cal.wait_for("groove take: ")
        line = cal.wait_for("groove: ", timeout=60)
        assert line.startswith("groove: 14.5 s recorded, peak -inf dBFS"), line
        warning = cal.wait_for("warning: ")
        assert warning.strip() == ("warning: no signal on input channel 1: peak -inf dBFS (digital silence) "
                                   "after 14.5 s; check the cable, the gain and --input-channels")
        cal.wait_for("next: groove:")
        cal.say("quit")
        cal.wait_for("continue with: rtdrums calibrate --groove --out ")
        assert cal.finish(60) == 130
    finally:
        if cal.proc.poll() is None:
            cal.proc.kill()
    take = sf.read(out / "takes" / "groove" / "take.wav", dtype="float32")[0]
    assert len(take) == take_layout(load_pattern(), SR, COUNT_IN)[1] and not np.any(take)


@pytest.mark.jack
def test_ctrl_c_during_a_take_keeps_it_on_jack(jack_server, tmp_path):
    """Ctrl-C during the take stops at once and writes the take so far, with the notes it holds."""
    import signal
    import time
    out = tmp_path / "p"
    cal = Calibration(["--groove", "--out", out, *AUDIO, "--click-channels", "1"], jack_server.env)
    try:
        cal.wait_for("next: groove:")
        cal.say()
        cal.wait_for("groove take: ")
        cal.wait_for("bar 1 of 4: ", timeout=30)             # after the lead-in and the count-in
        time.sleep(1.5)                                      # into the pattern's first bar
        cal.proc.send_signal(signal.SIGINT)
        line = cal.wait_for("stopped (Ctrl-C); the take so far is kept in ")
        assert line.endswith(str(out / "takes" / "groove")), line
        assert cal.proc.wait(60) == 130
    finally:
        if cal.proc.poll() is None:
            cal.proc.kill()
    folder = out / "takes" / "groove"
    start, total = take_layout(load_pattern(), SR, COUNT_IN)
    assert start < len(sf.read(folder / "take.wav")[0]) < total
    notes = load_groove(folder / "take.mid")                   # only the notes the take holds
    assert 0 < len(notes) < len(load_pattern().notes)
