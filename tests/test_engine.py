"""The streaming engine on real rendered drum grooves (fixture kit, shipped GMD grooves).

Reconstruction, stem latency, block-size invariance and reset, no allocation per block,
NaN/Inf/huge/denormal input, other sample rates with a 48 kHz preset, and the triggers themselves
(onset F-measure, notes, velocities, latency) against the exact onsets of the renders.
"""

from __future__ import annotations

import itertools
import tracemalloc
from dataclasses import replace

import mir_eval
import numpy as np
import pytest
from scipy.stats import spearmanr

from rtdrums.engine import Engine
from rtdrums.tables import map_templates
from rtdrums.events import EVENT_DTYPE
from rtdrums.offline import run_blocks, separate
from rtdrums.training.render import render_groove

from allocations import block_allocations

KEY_FIELDS = ["onset", "drum", "note", "velocity"]


def _stream(engine: Engine, x: np.ndarray, sizes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed x through engine.process in blocks of the given sizes (cycled).

    Returns (stems, events, block_end): block_end[i] is the stream position at the end of the
    block in which event i was returned.
    """
    sizes = itertools.cycle(sizes)
    stems = np.empty((len(x), len(engine.stem_names)), np.float32)
    events, ends = [], []
    pos = 0
    while pos < len(x):
        n = min(next(sizes), len(x) - pos)
        out, ev = engine.process(x[pos:pos + n])
        assert out.shape == (n, len(engine.stem_names))
        stems[pos:pos + n] = out
        pos += n
        if len(ev):
            events.append(ev.copy())
            ends += [pos] * len(ev)
    ev = np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)
    return stems, ev, np.array(ends, np.int64)


@pytest.fixture(scope="module")
def excerpt(rendered_groove):
    """The first 2.5 s of the rendered groove (several kick, snare and hi-hat hits)."""
    return np.ascontiguousarray(rendered_groove.mix[:120000])


@pytest.fixture(scope="module")
def groove_run(fixture_preset, rendered_groove):
    """The whole 20 s rendered groove streamed in 128-sample blocks, plus stem_latency zeros."""
    engine = Engine(fixture_preset, 48000, max_block=128)
    lat = engine.stem_latency
    x = rendered_groove.mix
    stems, events = run_blocks(engine, np.concatenate([x, np.zeros(lat, np.float32)]), 128)
    return engine, stems, events


# -- (1) reconstruction, (2) stem latency ----------------------------------------------------

def test_stems_sum_to_the_delayed_input(groove_run, rendered_groove):
    engine, stems, _ = groove_run
    lat = engine.stem_latency
    x = rendered_groove.mix.astype(np.float64)
    total = stems.astype(np.float64).sum(axis=1)
    peak = np.max(np.abs(x))
    assert np.all(np.isfinite(stems))
    delayed = np.concatenate([np.zeros(lat), x])           # silence before the input, then x
    err = np.max(np.abs(total - delayed))
    assert err <= 2e-6 * peak, err / peak                  # float32 stems, float64 sum


def test_stems_resemble_the_true_stems(groove_run, rendered_groove):
    """Not a reconstruction that dumps everything into one stem: each drum stem tracks its truth."""
    engine, stems, _ = groove_run
    lat = engine.stem_latency
    for i, name in enumerate(engine.stem_names[:-1]):
        est = stems[lat:, i].astype(np.float64)
        ref = rendered_groove.stems[name].astype(np.float64)
        sdr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))
        assert sdr > 3.0, (name, sdr)


@pytest.mark.parametrize("phase", [0, 1, 63, 127])
def test_impulse_comes_out_exactly_stem_latency_later(fixture_preset, phase):
    engine = Engine(fixture_preset, 48000)
    lat = engine.stem_latency
    assert lat == engine.settings.synthesis - 1 == 255
    n0 = 5000 + phase
    x = np.zeros(n0 + lat + 3000, np.float32)
    x[n0] = 1.0
    stems, _, _ = _stream(engine, x, [256])
    total = stems.astype(np.float64).sum(axis=1)
    assert abs(total[n0 + lat] - 1.0) < 1e-6
    rest = np.delete(total, n0 + lat)
    assert np.max(np.abs(rest)) < 1e-6


# -- (3) block-size invariance and reset, (8) onset <= emitted ------------------------------

def test_block_size_invariance_and_reset(fixture_preset, excerpt):
    """Blocks of 1, 7, 64, 128, 1000 and random sizes give bit-identical stems and events.

    Events differ only in `emitted`, which must be the end of the block that returned them;
    a second run after reset() repeats the first exactly.
    """
    engine = Engine(fixture_preset, 48000, max_block=2048)
    ref_stems, ref_ev, ref_end = _stream(engine, excerpt, [1])
    assert len(ref_ev) >= 8 and set(ref_ev["drum"]) == {0, 1, 2}
    assert np.array_equal(ref_ev["emitted"], ref_end)
    rng = np.random.default_rng(3)
    for sizes in ([7], [64], [128], [1000], list(rng.integers(1, 2049, 200))):
        engine.reset()
        stems, ev, end = _stream(engine, excerpt, sizes)
        assert np.array_equal(stems, ref_stems), sizes[:3]
        assert np.array_equal(ev[KEY_FIELDS], ref_ev[KEY_FIELDS]), sizes[:3]
        assert np.array_equal(ev["emitted"], end)
        # the block end is the first block boundary at or after the exact (block 1) emission
        assert np.all(ev["emitted"] >= ref_ev["emitted"])
        if len(set(sizes)) == 1:
            assert np.all(ev["emitted"] - ref_ev["emitted"] < sizes[0])
    # repeat after reset(): identical, emitted included
    engine.reset()
    a = _stream(engine, excerpt, [128])
    engine.reset()
    b = _stream(engine, excerpt, [128])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # a fresh engine, warmed, gives the same as the reset one
    fresh = Engine(fixture_preset, 48000, max_block=2048)
    fresh.warm()
    c = _stream(fresh, excerpt, [128])
    assert np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])
    assert fresh.samples_processed == len(excerpt)


def test_process_into_equals_process(fixture_preset, excerpt):
    a = Engine(fixture_preset, 48000, max_block=512)
    b = Engine(fixture_preset, 48000, max_block=512)
    stems = np.zeros((512, 4), np.float32)
    events = np.zeros(64, EVENT_DTYPE)
    for start in range(0, len(excerpt), 512):
        block = excerpt[start:start + 512]
        out, ev = a.process(block)
        k = b.process_into(block, stems, events)
        assert np.array_equal(out, stems[:len(block)])
        assert np.array_equal(ev, events[:k])


def test_analyse_gives_the_activations_of_the_streaming_engine(fixture_preset, excerpt):
    """Engine.analyse (training and tuning: no masks, synthesis or triggers) computes bit for bit
    the activations and onset-model features of the reference kernels' process(), bad samples
    included; the lean kernels' engine analyses alike."""
    engine = Engine(fixture_preset, 48000, max_block=128, lean=False)
    lean = Engine(fixture_preset, 48000, max_block=128)
    hop = engine.settings.hop
    x = excerpt[:60 * hop + 77].copy()
    x[1000:1010] = np.nan
    h, feats = engine.analyse(x, fixture_preset.onset_model.band_hz, fixture_preset.onset_model.short_hz)
    assert h.shape == (60, engine.tables.W.shape[1]) and feats.shape == (60, fixture_preset.onset_model.n_features)
    assert engine.samples_processed == 0                 # left reset
    h_lean, feats_lean = lean.analyse(x, fixture_preset.onset_model.band_hz, fixture_preset.onset_model.short_hz)
    assert np.array_equal(h_lean, h) and np.array_equal(feats_lean, feats)
    for m in range(60):
        engine.process(x[m * hop:(m + 1) * hop])
        assert np.array_equal(engine.state.h, h[m]), m
        assert np.array_equal(engine.state.feat.astype(np.float32), feats[m]), m
    assert np.any(h > 0)


def test_events_carry_onset_before_emitted(groove_run, rendered_groove):
    engine, _, events = groove_run
    assert len(events) > 50
    assert np.all(events["onset"] <= events["emitted"])
    assert np.all(events["onset"] >= 0)
    assert np.all((events["velocity"] >= 1) & (events["velocity"] <= 127))
    assert np.all(np.diff(events["emitted"]) >= 0)
    assert engine.events_dropped == 0


# -- (4) no allocation per block --------------------------------------------------------------

def test_no_allocation_per_block(fixture_preset, excerpt):
    """process_into over many blocks allocates nothing that grows, in compiled code or in Python.

    Numba's runtime counts one MemInfo per array argument each time Python calls compiled code
    (unboxing; freed on return: a two-array @njit function shows 2 allocs and 2 frees per call).
    The engine's tables and state cross the boundary bundled, as one reference, so the exact
    claim tested is: every call allocates exactly three NRT blocks (its block, stems and events
    arguments) and frees them, whatever the block size and whether frames or events happen,
    i.e. the compiled body of a block allocates nothing; and Python-level traced memory does
    not grow.
    """
    a = block_allocations(Engine(fixture_preset, 48000, max_block=1024), excerpt)
    assert a.events > 5                                   # real work happened
    assert a.nrt_allocs == a.calls * 3
    assert a.nrt_kept == 0 and a.meminfo_kept == 0        # nothing kept
    assert a.python_bytes < 2048, a.python_bytes


# -- (5) NaN / Inf / huge / denormal input ----------------------------------------------------

def _sanitized(x):
    y = np.array(x, np.float64)
    y[~np.isfinite(y)] = 0.0
    y = np.clip(y, -16.0, 16.0)
    y[np.abs(y) < 1e-30] = 0.0
    return y.astype(np.float32)


def _dirty(x, start, length, pattern):
    y = x.copy()
    y[start:start + length] = np.resize(np.asarray(pattern, np.float32), length)
    return y


def test_bad_samples_are_sanitized_exactly(fixture_preset, excerpt):
    """NaN/Inf -> 0 (counted), beyond +-16 clipped, denormals -> 0: the engine then behaves
    bit for bit as on the sanitized input, and the stems sum to that input."""
    dirty = _dirty(excerpt, 30000, 960, [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-40, -1e-40, 3.0])
    n_bad = int(np.sum(~np.isfinite(dirty)))
    assert n_bad == 360
    e_dirty = Engine(fixture_preset, 48000, max_block=256)
    s_dirty, ev_dirty, _ = _stream(e_dirty, dirty, [256])
    assert np.all(np.isfinite(s_dirty))
    assert np.all(np.isfinite(e_dirty.state.h)) and np.all(np.isfinite(e_dirty.state.ola))
    assert e_dirty.bad_samples == n_bad

    e_san = Engine(fixture_preset, 48000, max_block=256)
    s_san, ev_san, _ = _stream(e_san, _sanitized(dirty), [256])
    assert np.array_equal(s_dirty, s_san)
    assert np.array_equal(ev_dirty, ev_san)
    assert e_san.bad_samples == 0

    lat = e_dirty.stem_latency
    total = s_dirty.astype(np.float64).sum(axis=1)
    san = _sanitized(dirty).astype(np.float64)
    assert np.max(np.abs(total[lat:] - san[:-lat])) <= 2e-6 * np.max(np.abs(san))


def test_nan_inf_burst_leaves_no_trace(fixture_preset, excerpt):
    """Once a NaN/Inf burst has left the window, stems and triggers are those of a clean run
    (measured: equal events and stems within 1e-14 from 0.5 s after the burst)."""
    burst_end = 30000 + 960
    dirty = _dirty(excerpt, 30000, 960, [np.nan, np.inf, -np.inf, np.nan, 1e-40])
    e_dirty, e_clean = (Engine(fixture_preset, 48000, max_block=256) for _ in range(2))
    s_dirty, ev_dirty, _ = _stream(e_dirty, dirty, [256])
    s_clean, ev_clean, _ = _stream(e_clean, excerpt, [256])
    assert e_dirty.bad_samples == 768 and np.all(np.isfinite(s_dirty))
    later = burst_end + 48000 // 2
    assert np.max(np.abs(s_dirty[later:].astype(np.float64) - s_clean[later:])) <= 1e-6 * np.max(np.abs(excerpt))
    late = lambda ev: ev[KEY_FIELDS][ev["onset"] > later]
    assert len(late(ev_clean)) >= 5
    assert np.array_equal(late(ev_dirty), late(ev_clean))


def test_huge_burst_recovers(fixture_preset, rendered_groove, groove_run):
    """A 20 ms burst of +-1e30 (clipped to +-16, i.e. 24 dB over full scale) at 2 s.

    The stems are those of a clean run again 0.5 s after it. The triggers take longer: the
    burst is a real (clipped) signal to the detector, whose adaptive threshold follows a peak
    envelope with a 300 ms half-life; measured, the events equal a clean run's again from 4 s
    after the burst (from 0.5 s to 3 s after it they differ: some hits are missed).
    """
    _, clean_stems, clean_events = groove_run
    burst_end = 96000 + 960
    x = rendered_groove.mix
    dirty = _dirty(x, 96000, 960, [1e30, -1e30, 3e38, -3e38])
    engine = Engine(fixture_preset, 48000, max_block=128)
    stems, events = run_blocks(engine, np.concatenate([dirty, np.zeros(engine.stem_latency, np.float32)]), 128)
    assert np.all(np.isfinite(stems)) and engine.bad_samples == 0
    later = burst_end + 48000 // 2
    assert np.max(np.abs(stems[later:].astype(np.float64) - clean_stems[later:])) <= 1e-6 * np.max(np.abs(x))
    much_later = burst_end + 48000 * 9 // 2
    late = lambda ev: ev[KEY_FIELDS][ev["onset"] > much_later]
    assert len(late(clean_events)) >= 20
    assert np.array_equal(late(events), late(clean_events))


def test_denormal_and_silent_input_gives_exact_silence(fixture_preset):
    engine = Engine(fixture_preset, 48000)
    x = np.full(20000, 1e-40, np.float32)
    x[::2] = -1e-39
    stems, ev, _ = _stream(engine, x, [128])
    assert np.all(stems == 0) and len(ev) == 0 and engine.bad_samples == 0
    assert np.all(engine.state.ring == 0)


def test_huge_input_stays_finite(fixture_preset):
    engine = Engine(fixture_preset, 48000)
    x = np.resize(np.array([1e38, -1e38, 3e38, -3e38], np.float32), 20000)
    stems, ev, _ = _stream(engine, x, [100])
    assert np.all(np.isfinite(stems)) and np.max(np.abs(stems.sum(axis=1))) <= 16.0 + 1e-3
    assert np.all(np.isfinite(engine.state.h)) and np.all(np.isfinite(engine.activations))


# -- (6) other sample rates with a 48 kHz preset -----------------------------------------------

def test_map_templates(fixture_preset):
    W = fixture_preset.W
    src = fixture_preset.stft
    same = map_templates(W, src, src)
    assert np.array_equal(same, W)
    for rate in (44100, 96000):
        dst = src.scaled_to(rate)
        Wm = map_templates(W, src, dst)
        assert Wm.shape == (dst.n_bins, W.shape[1])
        assert np.all(Wm >= 0)
        np.testing.assert_allclose(Wm.sum(axis=0), 1.0, rtol=1e-9)
        if rate > 48000:
            assert np.all(Wm[dst.bin_freqs > 24000] == 0)


def _pooled_f(ref_by_drum, est_by_drum, window=0.05):
    """Pooled onset F-measure over several pieces: (ref list, est list) per drum."""
    out = {}
    for drum in ref_by_drum:
        hits = n_ref = n_est = 0
        for ref, est in zip(ref_by_drum[drum], est_by_drum[drum]):
            hits += len(mir_eval.util.match_events(ref, est, window))
            n_ref, n_est = n_ref + len(ref), n_est + len(est)
        p, r = hits / max(n_est, 1), hits / max(n_ref, 1)
        out[drum] = 2 * p * r / (p + r) if p + r else 0.0
    return out


# measured with the fixture preset on the first 12 s of the hip-hop validation groove (block 128):
#   44.1 kHz F kick 1.00 snare 1.00 hihat 0.97; 48 kHz 1.00 1.00 0.98; 96 kHz 1.00 1.00 0.97
RATE_FLOOR = {"kick": 0.95, "snare": 0.85, "hihat": 0.9}
_rate_f: dict[int, dict[str, float]] = {}


def _f_at_rate(preset, kit, grooves, rate: int) -> dict[str, float]:
    """F per drum of the hip-hop validation groove rendered and processed at `rate` (cached)."""
    if rate not in _rate_f:
        hiphop = next(p for p in grooves if "hiphop" in p.name)
        r = render_groove(hiphop, kit, sample_rate=rate, max_seconds=12.0)
        engine = Engine(preset, rate, max_block=128)
        s = engine.settings
        assert s.sample_rate == rate and engine.tables.W.shape == (s.n_bins, preset.W.shape[1])
        assert abs(s.hop / rate - 128 / 48000) < 0.1 * 128 / 48000
        sep = separate(engine, r.mix, 128)
        assert sep.stems.shape == (len(r.mix), 4)
        assert np.max(np.abs(sep.stems.astype(np.float64).sum(axis=1) - r.mix)) <= 2e-6 * np.max(np.abs(r.mix))
        _rate_f[rate] = {name: mir_eval.onset.f_measure(
            r.times(name), sep.events["onset"][sep.events["drum"] == d] / rate, 0.05)[0]
            for d, name in enumerate(engine.drum_names)}
    return _rate_f[rate]


@pytest.mark.parametrize("rate", [44100, 48000, 88200, 96000, 192000])
def test_engine_runs_and_triggers_at_other_rates(fixture_preset, fixture_kit, validation_grooves, rate):
    """Every rate a 48 kHz preset runs at (0.9x to 4x) triggers within 0.05 F of 48 kHz."""
    f = _f_at_rate(fixture_preset, fixture_kit, validation_grooves, rate)
    f48 = _f_at_rate(fixture_preset, fixture_kit, validation_grooves, 48000)
    for name, floor in RATE_FLOOR.items():
        assert f[name] >= floor and abs(f[name] - f48[name]) <= 0.05, (rate, f, f48)


def test_engine_refuses_a_rate_it_cannot_run(fixture_preset):
    from rtdrums.errors import UserError

    with pytest.raises(UserError) as err:
        Engine(fixture_preset, 4000)
    assert "\n" not in str(err.value)


# -- (7) triggers on rendered real-kit mixtures -------------------------------------------------

GM_NOTES = {"kick": {36}, "snare": {38}, "hihat": {42, 46, 44}}


def threshold_preset(preset):
    """The preset's tuned threshold detector instead of its learned trigger, with the threshold
    detector's scan of one hop (2.7 ms) for the peak: at the crossing its velocities are poor."""
    return replace(preset, onset_model=None, trigger=replace(preset.trigger, scan_ms=2.7))


@pytest.fixture(scope="module", params=["learned", "threshold"])
def validation_runs(request, fixture_preset, fixture_kit, validation_grooves):
    """Each shipped validation groove (first 30 s) rendered with the fixture kit and separated,
    with the learned trigger of the calibrated preset and with its tuned threshold detector."""
    preset = fixture_preset if request.param == "learned" else threshold_preset(fixture_preset)
    engine = Engine(preset, 48000, max_block=128)
    runs = []
    for path in validation_grooves:
        r = render_groove(path, fixture_kit, sample_rate=48000, max_seconds=30.0)
        engine.reset()
        runs.append((r, separate(engine, r.mix, 128)))
    return engine, runs


def test_triggers_on_rendered_real_kit_grooves(validation_runs):
    """Onset F-measure per drum at 50 ms, pooled over the 4 validation grooves (30 s each).

    The issue's target is F >= 0.9 per drum. Measured on the fixture kit (block 128, 48 kHz):
    learned trigger (trained on the 240 shipped model grooves) kick 0.98, snare 0.93, hi-hat 0.91;
    threshold detector tuned on the shipped training grooves 0.95 / 0.87 / 0.83. The learned
    trigger's floors are the target (0.95 for the kick, the level reached); the threshold
    detector's hold its level (0.90 / 0.80 / 0.79) so that a regression fails. Also: GM notes,
    velocities that follow the rendered ones (Spearman rank correlation on matched hits > 0.5)
    and the trigger latency, emitted minus the true onset: median below 10 ms for kick and snare
    (the hi-hat samples swell); with the learned trigger below 6 ms for kick and snare, 9 ms for
    the hi-hat.
    """
    engine, runs = validation_runs
    learned = engine.preset.onset_model is not None
    sr = 48000
    refs, ests = {}, {}
    pairs = {name: [] for name in engine.drum_names}
    for r, sep in runs:
        for d, name in enumerate(engine.drum_names):
            ev = sep.events[sep.events["drum"] == d]
            assert set(ev["note"].tolist()) <= GM_NOTES[name], (name, set(ev["note"].tolist()))
            ref = r.times(name)
            est = ev["onset"] / sr
            refs.setdefault(name, []).append(ref)
            ests.setdefault(name, []).append(est)
            true = [o for o in r.onsets if o.drum == name]
            for i, j in mir_eval.util.match_events(ref, est, 0.05):
                pairs[name].append((true[i].velocity, ev["velocity"][j],
                                    (ev["emitted"][j] / sr - ref[i]) * 1000))
    f = _pooled_f(refs, ests)
    floor = {"kick": 0.95, "snare": 0.90, "hihat": 0.90} if learned else {"kick": 0.90, "snare": 0.80, "hihat": 0.79}
    assert all(f[d] >= floor[d] for d in floor), (f, floor)
    for name, rows in pairs.items():
        true_v, est_v, lat_ms = (np.array(c) for c in zip(*rows))
        assert spearmanr(true_v, est_v)[0] > 0.5, name
        if learned:               # the note leaves with the decision (scan 0)
            assert np.median(lat_ms) < (6.0 if name != "hihat" else 9.0), (name, np.median(lat_ms))
        elif name in ("kick", "snare"):
            assert np.median(lat_ms) < 10.0, (name, np.median(lat_ms))
        assert np.all(lat_ms > -50)


@pytest.mark.parametrize("learned", [True, False], ids=["learned", "threshold"])
def test_a_drums_own_scan_changes_only_its_notes(learned, fixture_preset, rendered_groove):
    """A snare with a scan of its own sends exactly the notes of a preset with that scan for every
    drum (learned trigger: 2.7 ms against its default 0; threshold detector: 0 against its 2.7 ms),
    one hop apart; kick and hi-hat keep the preset's."""
    base = fixture_preset if learned else threshold_preset(fixture_preset)
    own_ms = 2.7 if learned else 0.0
    assert base.trigger.scan_ms == 2.7 - own_ms
    x = rendered_groove.mix[: 10 * 48000]

    def events(p):
        return separate(Engine(p, 48000, max_block=128), x, 128).events

    default, own = events(base), events(base.with_drum("snare", scan_ms=own_ms))
    all_own = events(replace(base, trigger=replace(base.trigger, scan_ms=own_ms)))
    for d, same_as in ((0, default), (1, all_own), (2, default)):
        assert np.array_equal(own[own["drum"] == d], same_as[same_as["drum"] == d]), d
    early, late = (default, all_own) if learned else (all_own, default)
    early, late = early[early["drum"] == 1], late[late["drum"] == 1]
    assert len(early) > 5 and np.array_equal(early["onset"], late["onset"])
    assert np.all(late["emitted"] - early["emitted"] == 128)


def test_hihat_articulations_get_their_notes(validation_runs):
    """Matched hi-hat hits get the note of the stroke played: closed 42, open 46, pedal 44.

    Measured on the fixture kit's validation renders, share of hits with their own note: learned
    trigger (the network's articulation outputs) 0.88 over all (closed 0.98, open 0.45, pedal
    0.88); threshold detector (the strongest template at the end of its scan) 0.72 (0.81, 0.60,
    0.36). An open stroke's first 5 ms sound like a closed one; its wash comes later.
    """
    engine, runs = validation_runs
    learned = engine.preset.onset_model is not None
    want = {"closed": 42, "open": 46, "pedal": 44}
    right, total = {a: 0 for a in want}, {a: 0 for a in want}
    for r, sep in runs:
        ev = sep.events[sep.events["drum"] == 2]
        true = [o for o in r.onsets if o.drum == "hihat"]
        ref = np.array([o.time_s for o in true])
        for i, j in mir_eval.util.match_events(ref, ev["onset"] / 48000, 0.05):
            a = true[i].articulation
            total[a] += 1
            right[a] += ev["note"][j] == want[a]
    share = {a: right[a] / total[a] for a in want}
    overall = sum(right.values()) / sum(total.values())
    assert min(total.values()) > 5, total
    assert overall >= (0.8 if learned else 0.68), (overall, share)
    assert share["closed"] >= 0.75 and share["open"] >= 0.4 and share["pedal"] > 0.3, share


def test_process_into_refuses_a_too_small_output(fixture_preset):
    """Compiled code does not check bounds: a stems_out shorter than the block is refused first."""
    engine = Engine(fixture_preset, 48000, max_block=256)
    with pytest.raises(ValueError, match="rows"):
        engine.process_into(np.zeros(200, np.float32), np.zeros((100, 4), np.float32),
                            np.zeros(8, EVENT_DTYPE))
    assert engine.samples_processed == 0
