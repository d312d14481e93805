"""rtdrums eval: metrics on known signals, baselines and the command on real renders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtdrums import cli
from rtdrums.errors import UserError
from rtdrums.evaluation import annotations, baselines, metrics, results, speed

FIXTURE_KIT = Path(__file__).parent / "fixtures" / "kit"
SR = 48000


def eval_cli(argv, monkeypatch, capsys):
    """Run `rtdrums eval ...` through the real dispatcher; (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "COMMANDS", ["eval"])
    code = cli.main(["eval", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- metrics on known signals -------------------------------------------------------------------
def test_perfect_estimate_scores_one_and_high_sdr():
    ref = np.array([0.5, 1.0, 1.25, 2.0])
    assert metrics.onset_scores(ref, ref, 0.02)["f"] == 1.0
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    assert metrics.sdr(x, x) > 100
    assert metrics.si_sdr(x, 0.5 * x) > 100                  # scale-invariant
    assert metrics.si_sdr(x, x + 0.1 * np.random.default_rng(1).standard_normal(SR)) == pytest.approx(20, abs=0.3)
    assert metrics.sdr(np.zeros(100), x[:100]) is None      # silent reference: no score


def test_shifted_estimate_gives_known_latency_and_window_effect():
    ref = np.arange(1, 21) * 0.5
    est = ref + 0.030                                         # 30 ms late
    assert metrics.onset_scores(ref, est, 0.050)["f"] == 1.0
    assert metrics.onset_scores(ref, est, 0.020)["f"] == 0.0
    lat = metrics.latency_summary(metrics.latencies_ms(ref, ref, est))
    assert lat["median"] == pytest.approx(30) and lat["max"] == pytest.approx(30) and lat["n"] == 20
    prf = metrics.onset_scores(ref, np.concatenate([ref, ref + 0.2]), 0.05)
    assert (prf["precision"], prf["recall"]) == (0.5, 1.0)
    assert metrics.correlation([1, 2, 3, 4], [2, 4, 6, 8.5]) > 0.99
    assert metrics.correlation([1, 2], [1, 2]) is None


# -- annotations ----------------------------------------------------------------------------------
def test_annotations_parse_and_reject(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("# onsets\n0.50 KD\n0.75\tHH\n1.0,SD\n1.2 tom\n")
    got = annotations.read_annotations(f, annotations.parse_label_map("KD=kick,SD=snare,HH=hihat"))
    assert got["kick"].tolist() == [0.5] and got["snare"].tolist() == [1.0] and got["hihat"].tolist() == [0.75]
    f.write_text("0.5 KD\nabc SD\n")
    with pytest.raises(UserError, match=":2:"):
        annotations.read_annotations(f, annotations.parse_label_map("KD=kick"))
    with pytest.raises(UserError, match="LABEL=DRUM"):
        annotations.parse_label_map("KD=cowbell")


# -- baselines on real renders --------------------------------------------------------------------
def test_band_trigger_latency_is_causal(rendered_groove):
    r = rendered_groove
    res = baselines.band_trigger(r.mix, SR, block=128)
    for d in ("kick", "snare", "hihat"):
        lat = metrics.latencies_ms(r.times(d), res.onsets[d], res.emitted[d])
        assert lat.size and np.all(res.emitted[d] >= res.onsets[d])
        assert np.all(np.diff(res.emitted[d] * SR) >= 0)
        assert np.all(((res.emitted[d] * SR).round() % 128) == 0)     # sent at block ends


def test_offline_nmf_masks_sum_to_the_input_and_find_hits(rendered_groove, fixture_preset):
    from rtdrums.engine import Engine

    r = rendered_groove
    x = r.mix[: 6 * SR]
    engine = Engine(fixture_preset, SR)
    res = baselines.offline_nmf(x, engine)
    total = sum(res.stems.values())
    assert np.max(np.abs(total)) <= np.max(np.abs(x)) * 1.5
    assert res.activations.shape[0] == 3
    snare = metrics.onset_scores(r.times("snare")[r.times("snare") < 5.5], res.onsets["snare"], 0.05)
    assert snare["f"] > 0.4
    assert metrics.si_sdr(r.stems["snare"][: len(x)], res.stems["snare"]) > 5


def test_oracle_masks_return_a_lone_drum_exactly_and_bound_the_templates(rendered_groove, fixture_preset):
    from rtdrums.engine import Engine

    r = rendered_groove
    n = 6 * SR
    stems = {k: v[:n] for k, v in r.stems.items()}
    engine = Engine(fixture_preset, SR)
    lone = {k: (v if k == "snare" else np.zeros_like(v)) for k, v in stems.items()}
    res = baselines.oracle_masks(lone, engine)
    assert res.onsets is None and np.allclose(res.stems["snare"], stems["snare"], atol=1e-5)
    assert not np.any(res.stems["kick"]) and not np.any(res.stems["hihat"])
    oracle = baselines.oracle_masks(stems, engine)
    model = baselines.offline_nmf(sum(stems.values()), engine)
    for d in ("kick", "snare", "hihat"):
        assert metrics.si_sdr(stems[d], oracle.stems[d]) > metrics.si_sdr(stems[d], model.stems[d]) + 1


def test_recall_by_velocity_counts_each_band():
    from rtdrums.evaluation.run import Tally

    t = Tally()
    ref = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    vel = np.array([10, 20, 40, 100, 127])
    t.add_onsets(ref, np.array([2.01, 3.0, 5.02, 7.0]), ref_vel=vel)    # misses 1.0 and 4.0
    by = t.summary()["recall_by_velocity"]
    assert [(b["ref"], b["matched"]) for b in by.values()] == [(2, 1), (1, 1), (0, 0), (2, 1)]
    assert by["1-31"]["recall"] == 0.5 and by["64-95"]["recall"] is None
    assert Tally().summary()["f_50ms"] is None        # a method that scored no onsets has no F


def test_compare_solvers_reaches_the_engine_fit(rendered_groove, fixture_preset):
    res = speed.compare_solvers(fixture_preset, rendered_groove.mix[: 3 * SR], repeats=1)
    assert res["frames"] > 1000
    for key in ("sklearn_batch", "libnmfd"):
        assert res[key]["reached"] and res[key]["us_per_frame"] > 0
    assert res["engine_solve"]["us_per_frame"] > 0 and res["ratios"]["sklearn_batch"] > 0
    assert "scikit-learn" in speed.markdown(res)


# -- the command ----------------------------------------------------------------------------------
def test_eval_kit_end_to_end(fixture_preset_dir, validation_grooves, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, stdout, err = eval_cli(["--kit", FIXTURE_KIT, "--preset", fixture_preset_dir, "--out", out,
                                  "--grooves", validation_grooves[0], "--seconds", 5], monkeypatch, capsys)
    assert code == 0, err
    for name in ("results.md", "results.json", "activations.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"rtdrums", "nmf_offline", "oracle_masks", "libnmfd_nmfd", "band_trigger"}
    kick = res["methods"]["rtdrums"]["drums"]["kick"]
    assert 0 < kick["f_50ms"] <= 1 and kick["ref"] > 0 and kick["latency_ms"]["median"] is not None
    assert res["methods"]["libnmfd_nmfd"]["drums"]["snare"]["si_sdr_db"] is not None
    oracle = res["methods"]["oracle_masks"]["drums"]["snare"]
    assert oracle["f_50ms"] is None and oracle["si_sdr_db"] > res["methods"]["rtdrums"]["drums"]["snare"]["si_sdr_db"]
    by = kick["recall_by_velocity"]
    assert sum(b["ref"] for b in by.values()) == kick["ref"]
    assert sum(b["matched"] for b in by.values()) == kick["matched_50ms"]
    res["protocol"] = "calibrated"
    summary = results.summary([res, dict(res, protocol="left-out")], "python -m rtdrums.evaluation.results", None)
    row = summary.split("## Recall by velocity")[1].split("\n| --- |")[1].splitlines()[1]
    assert row.endswith(" / ".join(str(b["ref"]) for b in res["methods"]["rtdrums"]["drums"]["snare"]
                                   ["recall_by_velocity"].values()) + " |")
    assert "| masks from the true stems | - / - / - |" in summary
    assert res["kit_in_training"] and "not a score on an unseen kit" in err
    assert "| rtdrums (causal, live) | kick |" in (out / "results.md").read_text()


def test_eval_calibrate_trains_as_train_kit_does(validation_grooves, tmp_path, monkeypatch, capsys):
    """The calibrated protocol measures what a drummer's `rtdrums train --kit` gives: the default
    preset's learned trigger fine-tuned on the fast schedule's model grooves, not the long training."""
    from rtdrums.training.train import FAST

    out = tmp_path / "out"
    code, _, err = eval_cli(["--kit", FIXTURE_KIT, "--calibrate", "--out", out, "--baselines", "none",
                             "--grooves", validation_grooves[0], "--seconds", 5], monkeypatch, capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    record = res["preset"]["provenance"]["learned_trigger"]
    assert record["fine_tuned_from"] == "default" and record["grooves"] == FAST.model_grooves
    assert "trigger_tuning" not in res["preset"]["provenance"]      # the detector keeps the base's
    assert res["methods"]["rtdrums"]["drums"]["kick"]["f_50ms"] > 0.5


def test_eval_audio_with_annotations(rendered_groove, fixture_preset_dir, tmp_path, monkeypatch, capsys):
    r = rendered_groove
    audio, notes = tmp_path / "take.wav", tmp_path / "take.txt"
    sf.write(audio, r.mix[: 8 * SR], SR)
    labels = {"kick": "BD", "snare": "SN", "hihat": "HH"}
    notes.write_text("".join(f"{o.time_s:.6f} {labels[o.drum]}\n" for o in r.onsets
                             if o.drum in labels and o.time_s < 8))
    out = tmp_path / "out"
    code, _, err = eval_cli(["--audio", audio, "--annotations", notes, "--labels", "BD=kick,SN=snare,HH=hihat",
                             "--preset", fixture_preset_dir, "--out", out], monkeypatch, capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"rtdrums", "band_trigger"}
    snare = res["methods"]["rtdrums"]["drums"]["snare"]
    assert snare["ref"] == sum(o.drum == "snare" and o.time_s < 8 for o in r.onsets)
    assert 0 < snare["f_50ms"] <= 1 and snare["latency_ms"]["median"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--out", "o"], "either --kit"),
    (["--kit", "/nonexistent/kit", "--out", "o", "--calibrate"], "no such kit folder"),
    (["--kit", FIXTURE_KIT, "--audio", "x.wav", "--out", "o"], "either --kit"),
    (["--audio", "x.wav", "--out", "o"], "needs --annotations"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--calibrate", "--baselines", "magic"], "unknown baseline"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--calibrate", "--grooves", "/nonexistent.mid"], "no such MIDI"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--preset", "/nonexistent/preset"], "no preset"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--calibrate", "--block", "0"], "--block"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--hop", "64"], "--hop goes with --calibrate"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--full"], "--full sets how --calibrate trains"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--calibrate", "--hop", "0"], "--hop 0"),
    (["--kit", FIXTURE_KIT, "--out", "o", "--calibrate", "--hop", "4096"], "--hop 4096"),
    (["--audio", "x.wav", "--annotations", "a.txt", "--labels", "KD", "--out", "o"], "LABEL=DRUM"),
])
def test_bad_inputs_are_one_line_errors(argv, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = eval_cli(argv, monkeypatch, capsys)
    assert code == 1
    assert err.startswith("rtdrums eval: error:") and message in err and err.count("\n") == 1


def test_unwritable_out_fails_before_any_work(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("")
    code, _, err = eval_cli(["--kit", FIXTURE_KIT, "--out", "afile/results", "--calibrate"], monkeypatch, capsys)
    assert code == 1      # one line: nothing was trained or rendered before the error
    assert err.startswith("rtdrums eval: error: cannot write to afile/results") and err.count("\n") == 1
