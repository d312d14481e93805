"""Errors made visible: false triggers and misses by cause, latency as a distribution.

Known cases on real renders of the fixture kit (a synthetic estimate list whose false triggers
come from known sources), the percentiles against hand-computed values, and `rtdrums eval` with
the engine on a shipped groove: every error counted once, the tables and the PNG written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtdrums import cli
from rtdrums.evaluation import causes, metrics, report, results
from rtdrums.evaluation.run import Tally
from rtdrums.host.bench import SR as BENCH_SR, hit_to_note_by_drum
from rtdrums.training.render import render_groove

from conftest import write_groove

FIXTURE_KIT = Path(__file__).parent / "fixtures" / "kit"

# (time s, GM note, velocity): kick 36, snare 38, closed hat 42, mid tom 45, crash 49
KNOWN_GROOVE = [
    (0.5, 38, 100),                     # snare, found
    (1.0, 36, 100),                     # kick: a false snare 3 ms later is the kick's
    (1.5, 49, 100),                     # crash: a false snare 2 ms later
    (2.0, 45, 100),                     # tom: a false snare 5 ms before it
    (2.5, 38, 100),                     # snare, found, then found again 20 ms and 100 ms later
    (4.0, 42, 100),                     # hi-hat: a false snare 4 ms later
    (5.0, 38, 100),                     # snare alone, missed
    (5.5, 38, 15), (5.5, 36, 127),      # soft snare with a loud kick, missed: masked by the kick
    (6.0, 38, 127), (6.005, 42, 10),    # loud snare with a soft hat, missed: beside a quieter hit
    (6.95, 38, 100),                    # snare, found; a false one 52 ms later at the kick ...
    (7.0, 36, 100),                     # ... is the kick's attack, not the snare's ring
]
SNARE_ESTIMATES = [0.5, 1.003, 1.502, 1.995, 2.5, 2.52, 2.6, 3.5, 4.004, 6.95, 7.002]


@pytest.fixture(scope="module")
def known_render(fixture_kit, tmp_path_factory):
    path = write_groove(KNOWN_GROOVE, tmp_path_factory.mktemp("groove") / "known.mid")
    return render_groove(path, fixture_kit, 48000)


def test_known_false_triggers_and_misses_get_their_causes(known_render):
    r = known_render
    labels = {(round(o.time_s, 3), causes.source_label(o.drum, o.articulation)) for o in r.onsets}
    assert {(1.5, "crash"), (2.0, "tom"), (4.0, "hihat"), (5.5, "kick")} <= labels
    t = Tally()
    t.add_onsets(r.times("snare"), np.array(SNARE_ESTIMATES), ref_vel=r.velocities("snare"),
                 drum="snare", sources=causes.Sources.from_render(r))
    s = t.summary()
    assert (s["ref"], s["est"], s["matched_50ms"]) == (6, 11, 3)
    assert s["false_by_cause"] == {"double": 2, "kick": 2, "snare": 0, "hihat": 1, "tom": 1, "crash": 1,
                                   "ride": 0, "other": 0, "none": 1}
    assert s["missed_by_cause"] == {"alone": 1, "beside_quieter": 1, "kick": 1, "snare": 0, "hihat": 0,
                                    "tom": 0, "crash": 0, "ride": 0, "other": 0}
    by = s["recall_by_velocity"]                       # the soft snare (15) and two of 100 / 127
    assert [b["missed"] for b in by.values()] == [1, 0, 0, 2]


def test_cause_windows_at_their_edges():
    src = causes.Sources.from_annotations({"kick": np.array([1.0]), "snare": np.array([2.0])})
    f = causes.false_trigger_cause
    assert f("snare", 1.0295, src) == "kick"           # 29.5 ms after the kick: its attack
    assert f("snare", 0.9905, src) == "kick"           # 9.5 ms before it: an early estimate
    assert f("snare", 1.0305, src) == "none"           # later: another drum's ring is no cause
    assert f("snare", 0.9895, src) == "none"
    assert f("snare", 2.0305, src) == "double"         # own ring, up to 150 ms
    assert f("snare", 2.1495, src) == "double"
    assert f("snare", 2.1505, src) == "none"
    assert causes.miss_cause("snare", 2.0, src) is None      # annotations have no stems to compare


def test_latency_percentiles_match_numpy_and_hand_values():
    lat = np.arange(1.0, 101.0)                        # 1..100 ms
    s = metrics.latency_summary(lat)
    assert s == {"n": 100, "median": 50.5, "p95": pytest.approx(95.05), "p99": pytest.approx(99.01), "max": 100.0}
    x = np.random.default_rng(3).gamma(2.0, 3.0, 997)
    s = metrics.latency_summary(x)
    for k, q in (("median", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        assert s[k] == np.percentile(x, q)
    assert metrics.latency_summary([])["p99"] is None


def test_bench_hit_to_note_per_drum():
    onsets = {"kick": np.array([0, 48000]), "snare": np.array([24000]), "hihat": np.array([], np.int64)}
    note_map = {"kick": {36}, "snare": {38, 37}, "hihat": {42}}
    # kick notes 96 and 480 samples late, a snare note 192 samples late (the kick's onset at 0 is
    # more recent for it but belongs to another drum), a stray hat note with no hat onset
    notes = [(96, 36, 100), (24192, 38, 90), (48480, 36, 80), (50000, 42, 20)]
    by = hit_to_note_by_drum(notes, onsets, note_map)
    ms = np.array([96, 480]) / BENCH_SR * 1e3
    assert by["kick"]["n"] == 2 and by["kick"]["median_ms"] == round(float(np.median(ms)), 3)
    assert by["kick"]["p95_ms"] == round(float(np.percentile(ms, 95)), 3) and by["kick"]["max_ms"] == 10.0
    assert by["snare"] == {"n": 1, "median_ms": 4.0, "p95_ms": 4.0, "p99_ms": 4.0, "max_ms": 4.0}
    assert by["hihat"] == {"n": 0}


def test_eval_reports_errors_by_cause_and_the_latency_distribution(
        fixture_preset_dir, validation_grooves, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(cli, "COMMANDS", ["eval"])
    code = cli.main(["eval", "--kit", str(FIXTURE_KIT), "--preset", str(fixture_preset_dir), "--out", str(out),
                     "--grooves", str(validation_grooves[1]), "--seconds", "12", "--baselines", "band_trigger"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    errors = 0
    for m in ("rtdrums", "band_trigger"):
        for d, s in res["methods"][m]["drums"].items():
            assert sum(s["false_by_cause"].values()) == s["est"] - s["matched_50ms"]
            assert sum(s["missed_by_cause"].values()) == s["ref"] - s["matched_50ms"]
            assert sum(b["missed"] for b in s["recall_by_velocity"].values()) == s["ref"] - s["matched_50ms"]
            assert s["false_by_cause"][d] == 0 and s["missed_by_cause"][d] == 0   # own hits are doubles
            errors += s["est"] + s["ref"] - 2 * s["matched_50ms"]
            lat = s["latency_ms"]
            assert lat["median"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert errors > 0                                   # the tables count something
    md = (out / "results.md").read_text()
    assert "## Errors by cause" in md and "| own hit (double) |" in md and "masked by kick" in md
    assert "latency median / p95 / p99 / max (ms)" in md
    png = (out / "latency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    res["protocol"] = "left-out"
    summary = results.summary([dict(res, protocol="calibrated"), res], "python -m rtdrums.evaluation.results", None)
    table = summary.split("## Errors (generic, kit left out)")[1].split("## Baselines")[0]
    snare = next(line for line in table.splitlines() if line.startswith("| kit | snare |"))
    s = res["methods"]["rtdrums"]["drums"]["snare"]
    cells = [c.strip() for c in snare.strip("|").split("|")]
    assert cells[2] == str(s["ref"]) and cells[5] == str(s["est"] - s["matched_50ms"])
    assert cells[6:] == ["-" if c == "snare" else str(s["false_by_cause"][c]) for c in causes.FALSE_CAUSES]
    assert report.false_cause_table(res).count("\n") == 2 * 3 + 1      # header, rule, 2 methods x 3 drums
