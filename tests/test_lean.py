"""The lean kernels (docs/lean-engine.md) against numpy and the reference kernels; the profile by
stage; many engines in threads; `rtdrums separate` on many files.

Real input throughout: the shipped default preset (65 templates, seven averaged networks) on a
groove rendered with the fixture kit.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from rtdrums.audio import write_audio
from rtdrums.channels import engine_bytes, run_channels
from rtdrums.dsp import fft
from rtdrums.dsp.adapt import with_adaptation
from rtdrums.dsp.stft import StftSettings
from rtdrums.engine import STAGES, Engine
from rtdrums.events import EVENT_DTYPE
from rtdrums.offline import CHUNK, run_blocks, separate
from rtdrums.dsp.onset_model import ensemble_outputs, ensemble_outputs_merged, merged_first_layer
from rtdrums.preset import load_preset
from rtdrums.tables import feature_centre

from allocations import block_allocations

KEY_FIELDS = ["onset", "emitted", "drum", "note"]
# every real FFT length the engine runs: the short window (n_fft / 8, >= 8) to n_fft (64 .. 4 x 4096)
SIZES = [2 ** k for k in range(3, 15)]


@pytest.fixture(scope="module")
def default():
    return load_preset("default")


@pytest.fixture(scope="module")
def clip(rendered_groove):
    return np.ascontiguousarray(rendered_groove.mix[:6 * 48000])


def _same_triggers(ref: np.ndarray, lean: np.ndarray) -> None:
    """The same notes at the same samples; velocities within one step: the float32 solve moves the
    activations (features of the velocity read-out) by about 1e-6, which turns a read-out next to
    a rounding boundary over it (one note of 149 on the rendered groove)."""
    assert np.array_equal(ref[KEY_FIELDS], lean[KEY_FIELDS])
    dv = np.abs(ref["velocity"] - lean["velocity"])
    assert dv.max() <= 1 and np.mean(dv > 0) < 0.02


def _stems_db(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Energy of the difference per stem, in dB of the reference stem's."""
    ref, other = ref.astype(np.float64), other.astype(np.float64)
    return 10 * np.log10(((ref - other) ** 2).sum(axis=0) / (ref ** 2).sum(axis=0) + 1e-300)


# -- the FFT kernels -----------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_lean_fft_equals_numpy_and_the_reference_kernels(n, rendered_groove):
    plan, tables, work = fft.make_plan(n), fft.lean_tables(n), np.zeros((2, n // 2))
    real = rendered_groove.mix[48000:48000 + n].astype(np.float64)
    for x in (np.random.default_rng(n).standard_normal(n), real):
        out, ref = np.zeros(n // 2 + 1, complex), np.zeros(n // 2 + 1, complex)
        fft.rfft_lean(x, out, plan.bitrev, tables, work)
        fft.rfft_into(x, ref, plan.bitrev, plan.twiddle, plan.split, plan.work)
        scale = np.abs(np.fft.rfft(x)).max()
        assert np.abs(out - np.fft.rfft(x)).max() <= 1e-14 * n * scale
        assert np.abs(out - ref).max() <= 1e-14 * n * scale
        mask = np.random.default_rng(1).uniform(size=n // 2 + 1)
        first = n - n // 4
        for t, w, tol in ((tables, work, 1e-14), (tables.astype(np.float32), work.astype(np.float32), 1e-6)):
            y = np.full(n, 7.0)
            fft.irfft_masked_lean(out, mask, y, first, plan.bitrev, t, w)
            want = np.fft.irfft(out * mask, n)
            assert np.abs(y[first:] - want[first:]).max() <= tol * np.log2(n) * np.abs(want).max()
            assert np.all(y[:first] == 7.0)                 # only the samples asked for are written
        yr = np.zeros(n)
        fft.irfft_into(out * mask, yr, plan.bitrev, plan.twiddle, plan.split, plan.work)
        y = np.zeros(n)
        fft.irfft_masked_lean(out, mask, y, 0, plan.bitrev, tables, work)
        assert np.abs(y - yr).max() <= 1e-14 * np.log2(n) * np.abs(yr).max()


# -- the learned trigger's merged first layer ----------------------------------------------------

def _numpy_ensemble(feats, w1, b1, w2, b2):
    """Logits of the K networks' mean probability per frame (one network: its own logits)."""
    z = np.einsum("nku,kuo->nko", np.maximum(np.einsum("nf,kfu->nku", feats, w1) + b1, 0.0), w2) + b2
    if w1.shape[0] == 1:
        return z[:, 0]
    p = (1 / (1 + np.exp(-z))).mean(axis=1)
    return np.log(p / (1 - p))


@pytest.fixture(scope="module")
def trigger_features(default, clip):
    m = default.onset_model
    return Engine(default, 48000).analyse(clip, m.band_hz, m.short_hz)[1].astype(np.float64)


@pytest.mark.parametrize("dtype", [np.int16, np.int8, np.float32])
def test_merged_first_layer_rounds_each_row_and_moves_the_centre_into_the_bias(default, dtype):
    t = Engine(default, 48000).tables
    K, F, U = t.m_w1.shape
    w = t.m_w1.transpose(1, 0, 2).reshape(F, K * U)
    centre = feature_centre(default)
    q, scale, c, bias = merged_first_layer(t.m_w1, t.m_b1, centre, dtype)
    assert q.dtype == dtype and q.shape == (F, K * U) and scale.shape == c.shape == (F,)
    assert np.allclose(bias, t.m_b1.reshape(-1) + centre @ w, rtol=1e-6, atol=1e-6) and np.allclose(c, centre)
    if dtype is np.float32:
        assert np.array_equal(q, w.astype(np.float32)) and np.all(scale == 1)
    else:
        assert np.all(np.abs(q).max(axis=1) == np.iinfo(dtype).max)       # each row uses the whole range
        assert np.all(np.abs(q * scale[:, None].astype(np.float64) - w) <= 0.5 * scale[:, None])


@pytest.mark.parametrize("networks", [7, 1])
def test_merged_ensemble_against_numpy_and_the_reference_kernel(default, trigger_features, networks):
    """ensemble_outputs (float64, the reference) equals numpy's; ensemble_outputs_merged in
    float32 is within float32 rounding of it and in int16 (the engine's) within 0.01 of a logit,
    and no decision (logit over its threshold) differs; with one network too (its own logits)."""
    t = Engine(default, 48000).tables
    w1, b1, w2, b2 = t.m_w1[:networks], t.m_b1[:networks], t.m_w2[:networks], t.m_b2[:networks]
    feats = trigger_features
    want = _numpy_ensemble(feats, w1, b1, w2, b2)
    ref = np.zeros_like(want)
    for i, x in enumerate(feats):
        ensemble_outputs(x, w1, b1, w2, b2, np.zeros(w1.shape[0] * w1.shape[2]), ref[i])
    assert np.allclose(ref, want, rtol=1e-9, atol=1e-9)
    D = len(t.m_logit)
    for dtype, tol in ((np.float32, 1e-3), (np.int16, 1e-2)):
        q, scale, c, bias = merged_first_layer(w1, b1, feature_centre(default), dtype)
        out = np.zeros_like(want)
        for i, x in enumerate(feats):
            ensemble_outputs_merged(x, q, scale, c, bias, w2, b2, np.zeros(len(bias), np.float32), out[i])
        assert np.abs(out - ref).max() < tol, (dtype, np.abs(out - ref).max())
        assert np.array_equal(out[:, :D] > t.m_logit, ref[:, :D] > t.m_logit)
    assert np.sum(ref[:, :D] > t.m_logit) > 20


# -- the engine: lean against reference ----------------------------------------------------------

@pytest.mark.parametrize("adapt", [False, True])
def test_lean_engine_gives_the_reference_stems_and_triggers(default, rendered_groove, adapt):
    """The whole rendered groove: every stem within -60 dB of the reference kernels' (float32
    models, solve and synthesis), the same triggers; with adaptation on too (the float32 copies of
    the templates follow it)."""
    p = with_adaptation(default, adapt)
    x = rendered_groove.mix
    ref = separate(Engine(p, 48000, max_block=128, lean=False), x, 128)
    lean_engine = Engine(p, 48000, max_block=128)
    lean = separate(lean_engine, x, 128)
    assert len(ref.events) > 40
    assert np.all(_stems_db(ref.stems, lean.stems) < -60), _stems_db(ref.stems, lean.stems)
    _same_triggers(ref.events, lean.events)
    if adapt:
        assert lean_engine.adapted_updates > 0


@pytest.mark.parametrize("settings", [StftSettings(48000, 2048, 64, 256, 64), StftSettings(48000, 1024, 128, 256, 128),
                                      StftSettings(48000, 2048, 512, 2048, 1024)])
def test_lean_engine_at_other_geometries(default, clip, settings):
    p = replace(default, stft=settings)
    ref = separate(Engine(p, 48000, max_block=512, lean=False), clip, 512)
    lean = separate(Engine(p, 48000, max_block=512), clip, 512)
    assert np.all(_stems_db(ref.stems, lean.stems) < -60)
    _same_triggers(ref.events, lean.events)


def _stream(engine, x, sizes):
    stems, events, pos = np.zeros((len(x), 4), np.float32), [], 0
    for n in itertools.cycle(sizes):
        if pos >= len(x):
            break
        out, ev = engine.process(x[pos:pos + n])
        stems[pos:pos + len(out)] = out
        events.append(ev[["onset", "drum", "note", "velocity"]].copy())
        pos += n
    return stems, np.concatenate(events)


def test_lean_engine_whole_chunked_and_after_reset_alike(default, clip):
    engine = Engine(default, 48000, max_block=len(clip))
    whole = _stream(engine, clip, [len(clip)])
    engine.reset()
    chunked = _stream(engine, clip, [1, 7, 128, 333, 1000])
    engine.reset()
    again = _stream(engine, clip, [len(clip)])
    assert len(whole[1]) > 10
    for other in (chunked, again):
        assert np.array_equal(whole[0], other[0]) and np.array_equal(whole[1], other[1])


@pytest.mark.parametrize("lean, emit_block", [(True, 0), (False, 0), (True, 128)])
def test_the_block_call_allocates_nothing(default, clip, lean, emit_block):
    """As tests/test_engine.py's test_no_allocation_per_block, for the shipped default (ensemble,
    lean masks, solve, synthesis and int8 trigger) with each set of kernels, profiling on, and
    with events reported for nominal blocks (emit_block): exactly the three argument records per
    call, all freed."""
    engine = Engine(default, 48000, max_block=1024, lean=lean, emit_block=emit_block)
    engine.profiling = True
    a = block_allocations(engine, clip)
    assert a.events > 5 and engine.frames_processed > 1000 and engine.stage_ticks.sum() > 0
    assert a.nrt_allocs == a.calls * 3 and a.nrt_kept == 0 and a.meminfo_kept == 0


# -- the profile by stage ------------------------------------------------------------------------

def test_profiling_times_every_stage_and_changes_nothing(default, clip):
    plain = Engine(default, 48000, max_block=128)
    profiled = Engine(with_adaptation(default, False), 48000, max_block=128)
    profiled.profiling = True
    profiled.reset()                                  # the setting survives a reset
    assert profiled.profiling
    a = separate(plain, clip, 128)
    b = separate(profiled, clip, 128)
    assert np.array_equal(a.stems, b.stems) and np.array_equal(a.events, b.events)
    ticks = dict(zip(STAGES, profiled.stage_ticks))
    assert all(ticks[s] > 0 for s in STAGES if s != "adaptation") and ticks["adaptation"] == 0
    assert plain.stage_ticks.sum() == 0
    profiled.clear_stage_ticks()
    assert profiled.stage_ticks.sum() == 0


# -- many channels -------------------------------------------------------------------------------

def test_engines_in_threads_give_what_each_gives_alone(default, rendered_groove):
    n, block = 5, 128
    x = rendered_groove.mix[:4 * 48000]
    inputs = [np.ascontiguousarray(np.roll(x, c * 9601)) for c in range(n)]
    first = Engine(default, 48000, max_block=block)
    engines = [first] + [Engine(default, 48000, max_block=block, share=first) for _ in range(n - 1)]
    run = run_channels(engines, inputs, block, threads=2)
    assert len(run.round_s) == len(x) // block and np.all(run.round_s > 0)
    for c in range(n):
        alone = Engine(default, 48000, max_block=block)
        stems = np.zeros((len(x), 4), np.float32)
        events = []
        for s in range(0, len(x), block):
            out, ev = alone.process(inputs[c][s:s + block])
            stems[s:s + block] = out
            events.append(ev.copy())
        assert np.array_equal(run.stems[c], stems)
        assert np.array_equal(run.events[c], np.concatenate(events)) and len(run.events[c]) > 5
    assert engine_bytes(alone) > alone.tables.m_w1m.nbytes
    assert engines[1].tables.m_w1m is first.tables.m_w1m and engines[1].tables.W is not first.tables.W
    assert engine_bytes(engines[1], shared=first) < engine_bytes(first) - first.tables.m_w1m.nbytes
    with pytest.raises(ValueError):
        Engine(replace(default, name="other"), 48000, share=first)


# -- many files ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def takes(rendered_groove, tmp_path_factory):
    folder = tmp_path_factory.mktemp("takes")
    for i in range(3):
        write_audio(folder / f"take{i}.wav", rendered_groove.mix[i * 48000:(i + 3) * 48000], 48000)
    return folder


def _cli(*args):
    from rtdrums.cli import main
    return main(["separate", *map(str, args)])


def test_separate_a_folder_gives_what_one_file_at_a_time_gives(takes, tmp_path, capsys):
    assert _cli(takes, "--out", tmp_path / "all", "--jobs", 2) == 0
    summary = capsys.readouterr().out
    assert "separated 3 files (9.0 s of audio)" in summary and "x real time" in summary
    for i in range(3):
        assert _cli(takes / f"take{i}.wav", "--out", tmp_path / f"one{i}", "--quiet") == 0
        for name in ("kick.wav", "snare.wav", "hihat.wav", "residual.wav"):
            a, _ = sf.read(tmp_path / f"one{i}" / name, dtype="float32")
            b, _ = sf.read(tmp_path / "all" / f"take{i}" / name, dtype="float32")
            assert np.array_equal(a, b)
        one = (tmp_path / f"one{i}" / "triggers.csv").read_text()
        assert one == (tmp_path / "all" / f"take{i}" / "triggers.csv").read_text() and one.count("\n") > 3


@pytest.mark.parametrize("nominal", [128, 100])
def test_emit_block_reports_what_calls_of_that_size_report(default, clip, nominal):
    """With emit_block n, calls of any multiple of n samples (one call of the whole clip
    included) give the stems and events, `emitted` included, of calls of n samples without it,
    also on a stream that does not start at a block boundary; calls of n samples are unchanged by
    it; reset() keeps it."""
    def calls(sizes):                          # stems, events and each event's call end
        stems, events, ends, pos = np.zeros((len(rest), 4), np.float32), [], [], 0
        for n in itertools.cycle(sizes):
            if pos >= len(rest):
                break
            out, ev = engine.process(rest[pos:pos + n])
            stems[pos:pos + len(out)] = out
            pos += len(out)
            events.append(ev.copy())
            ends += [engine.samples_processed] * len(ev)
        return stems, np.concatenate(events), np.array(ends)

    lead, rest = clip[:333], clip[333:]        # nominal blocks count from each call's first sample
    engine = Engine(default, 48000, max_block=len(rest))
    engine.process(lead)
    want_stems, want_ev, want_end = calls([nominal])
    assert len(want_ev) > 10 and np.array_equal(want_ev["emitted"], want_end)
    engine.emit_block = nominal
    for sizes in ([nominal], [len(rest)], [7 * nominal, nominal, 40 * nominal]):
        engine.reset()
        assert engine.emit_block == nominal
        engine.process(lead)
        stems, ev, _ = calls(sizes)
        assert np.array_equal(stems, want_stems) and np.array_equal(ev, want_ev), sizes
    assert Engine(default, 48000, emit_block=nominal).emit_block == nominal
    with pytest.raises(ValueError, match="emit_block"):
        engine.emit_block = -1


@pytest.mark.parametrize("block", [128, 100])
def test_offline_chunks_give_what_block_calls_give(default, clip, block):
    """run_blocks calls the engine once per CHUNK samples: the stems and every field of every
    event (emitted: the end of the `block`-sample block that decided it, Engine.emit_block) are
    those of calls of `block` samples, also on an engine that has already streamed a part block;
    the engine's emit_block is left as it was."""
    for lead in (0, 333):
        engine, alone = (Engine(default, 48000, max_block=512) for _ in range(2))
        for e in (engine, alone):
            e.process(clip[:lead])
        stems, events = run_blocks(engine, clip[lead:], block)
        assert engine.emit_block == 0
        want_stems, want_events = np.zeros_like(stems), []
        for s in range(0, len(clip) - lead, block):
            out, ev = alone.process(clip[lead + s:lead + s + block])
            want_stems[s:s + len(out)] = out
            want_events.append(ev.copy())
        assert len(clip) > 2 * CHUNK and len(events) > 5
        assert np.array_equal(stems, want_stems) and np.array_equal(events, np.concatenate(want_events))


def test_separate_several_files_named_one_by_one(takes, tmp_path, capsys):
    files = [takes / "take0.wav", takes / "take2.wav"]
    assert _cli(*files, "--out", tmp_path, "--quiet") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take0", "take2"]


@pytest.mark.parametrize("case, words", [("same names", "would both write into take0/"),
                                         ("empty folder", "holds no audio file"),
                                         ("score", "take one input file"),
                                         ("jobs", "--jobs must be at least 1")])
def test_separate_many_refuses_in_one_line(takes, tmp_path, capsys, case, words):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "take0.wav").write_bytes((takes / "take0.wav").read_bytes())
    args = {"same names": [takes, other / "take0.wav"], "empty folder": [empty],
            "score": [takes, "--score", takes / "x.mid"], "jobs": [takes, "--jobs", 0]}[case]
    assert _cli(*args, "--out", tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]


def test_the_block_call_releases_the_gil(default, rendered_groove):
    """While one thread is inside a long block call, another runs Python code: the compiled call
    holds no GIL (numba nogil), so engines in threads run on several cores. Checked, not timed: the
    main thread must run at some moment in the middle half of the call."""
    import threading
    import time

    x = np.ascontiguousarray(np.resize(rendered_groove.mix, 12 * 48000))
    engine = Engine(default, 48000, max_block=len(x))
    engine.warm()
    span = []

    def call():
        span.append(time.perf_counter())
        engine.process(x)
        span.append(time.perf_counter())

    worker = threading.Thread(target=call)
    seen = []
    worker.start()
    while worker.is_alive():
        seen.append(time.perf_counter())
    worker.join()
    t0, t1 = span
    seen = np.array(seen)
    assert np.any((seen > t0 + 0.25 * (t1 - t0)) & (seen < t0 + 0.75 * (t1 - t0)))


def test_bench_prints_stages_ratios_and_channels(capsys):
    """`rtdrums bench --reference --channels 2`: every stage per row, the reference/lean ratios,
    the channel counts with their CPU time and the memory per engine (what is printed, not how fast)."""
    from rtdrums.cli import main

    assert main(["bench", "--seconds", "0.5", "--no-adapt-rows", "--reference", "--channels", "2"]) == 0
    out = capsys.readouterr().out
    stage_rows = out.split("time per block by stage")[1].split("\n\n")[0].splitlines()[2:]
    assert [r.split()[0] for r in stage_rows] == ["low-latency", "low-latency", "hop-64", "hop-64", "standard", "standard"]
    assert all(len(r.split("/")) == len(STAGES) + 1 for r in stage_rows)
    assert out.count("x, per second of audio") == 3
    assert "largest count with every block under half its budget" in out and "MiB per further channel" in out
    assert "largest count whose p99 round is under half the budget" in out
