"""The nonnegative autoencoder of the activations (rtdrums.dsp.encoder, rtdrums.training.autoencoder).

An encoder is trained on the fixture kit's templates as `rtdrums train --autoencoder` trains it
(the training split's grooves), and tested on the validation groove of conftest's rendered_groove: its
output is nonnegative and finite on real frames and on garbage, it starts the frame solve closer
to the solution than the previous frame's h does, the autoencoder solver streams the same in any
chunking, and it survives a preset's round trip; a preset that asks for an encoder it lacks is a
one-line error naming `rtdrums train --autoencoder`.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace

import numpy as np
import pytest
import tomli_w

from rtdrums.cli import main
from rtdrums.dsp import encoder
from rtdrums.dsp.stft import spectrogram
from rtdrums.engine import Engine
from rtdrums.errors import UserError
from rtdrums.evaluation.autoencoder_eval import banded_cost
from rtdrums.offline import run_blocks, separate
from preset_files import saved_with_arrays_edited
from rtdrums.preset import load_preset, save_preset
from rtdrums.training.autoencoder import train_autoencoder, use_encoder
from rtdrums.training.train import build_preset, hits_from_kit, learn_templates

from chunks import process_in_random_chunks


@pytest.fixture(scope="module")
def ae_preset(fixture_kit):
    """Templates of the fixture kit (settings of the default preset) with an encoder."""
    base = load_preset("default")
    hits, prov = hits_from_kit(fixture_kit, 48000)
    templates = learn_templates(hits, base.stft, iterations=100)
    p = build_preset(templates, base.stft, "ae-test", {"sources": [prov]}, base)
    return train_autoencoder(p, [fixture_kit])          # as `rtdrums train --autoencoder` does: about a minute


def _encode(p, mag):
    t = encoder.encoder_tables(p.autoencoder, p.stft.sample_rate, p.stft.n_fft)
    E, U = t["e_w1"].shape
    h = np.zeros(p.W.shape[1])
    encoder.encode(np.ascontiguousarray(mag, np.float64), t["e_edges"], t["e_w1"], t["e_b1"], t["e_w2"],
                   t["e_b2"], np.zeros(E), np.zeros(U), h)
    return h


def test_encoder_output_is_nonnegative_and_finite_on_real_frames(ae_preset, rendered_groove):
    V = spectrogram(rendered_groove.mix, ae_preset.stft)
    H = np.array([_encode(ae_preset, V[:, m]) for m in range(0, V.shape[1], 7)])
    assert np.all(np.isfinite(H)) and H.min() >= 0
    assert H.sum(axis=1).max() > 0                   # not all zero: the groove is heard


def test_encoder_output_on_garbage(ae_preset):
    K = ae_preset.stft.n_bins
    assert not _encode(ae_preset, np.zeros(K)).any()                 # silence: no activation
    rng = np.random.default_rng(1)
    for mag in (np.full(K, np.nan), np.where(rng.random(K) < 0.1, np.inf, 1.0), np.full(K, 1e200),
                np.abs(rng.normal(size=K)) * 1e-25, np.eye(1, K, 5)[0] * 1e6):
        h = _encode(ae_preset, mag)
        assert np.all(np.isfinite(h)) and h.min() >= 0


def test_engine_with_the_autoencoder_solver_survives_bad_input(ae_preset):
    e = Engine(use_encoder(ae_preset, "solver"))
    for block in (np.full(300, np.nan, np.float32), np.full(300, np.inf, np.float32),
                  np.zeros(300, np.float32), np.full(300, 1e9, np.float32),
                  np.sign(np.sin(np.arange(3000))).astype(np.float32)):
        stems, _ = e.process(block)
        assert np.all(np.isfinite(stems)) and np.all(np.isfinite(e.state.h)) and e.state.h.min() >= 0


def test_encoder_start_reaches_the_solvers_cost_in_fewer_iterations(ae_preset, rendered_groove):
    """From the encoder's h, 2 KL updates fit the frames better than 4 from the previous frame's
    (docs/autoencoder.md: the encoder's start wins at small budgets; near convergence, at 20
    and more, the previous frame's start gets there first)."""
    x = rendered_groove.mix

    def cost(start, k):
        s = replace(ae_preset.solver, start=start, iterations=k, tolerance=0.0)
        return banded_cost(Engine(replace(ae_preset, solver=s)), x)[0]

    assert cost("encoder", 2) < cost("previous", 4)


def test_whole_equals_chunked_with_the_autoencoder_solver(ae_preset, rendered_groove):
    x = rendered_groove.mix[:5 * 48000]
    e = Engine(use_encoder(ae_preset, "solver"), max_block=8192)
    whole, whole_events = run_blocks(e, x, 8192)
    e.reset()
    stems, chunked = process_in_random_chunks(e, x)
    np.testing.assert_array_equal(stems, whole)
    assert len(whole_events) > 0
    for field in ("onset", "drum", "note", "velocity"):       # `emitted` is the end of each block
        np.testing.assert_array_equal(chunked[field], whole_events[field])
    e.reset()
    again, again_events = run_blocks(e, x, 8192)
    np.testing.assert_array_equal(again, whole)
    np.testing.assert_array_equal(again_events, whole_events)
    assert 1.9 < e.mean_iterations <= 2.0           # the refinement's budget (exact zeros stop early)


def test_round_trip_keeps_the_encoder(ae_preset, rendered_groove, tmp_path):
    p = use_encoder(ae_preset, "start")
    folder = save_preset(p, tmp_path / "p")
    q = load_preset(folder)
    assert q.solver == p.solver and q.solver.start == "encoder"
    for a in encoder.Encoder.ARRAYS:
        np.testing.assert_array_equal(getattr(q.autoencoder, a), getattr(p.autoencoder, a))
    x = rendered_groove.mix[:2 * 48000]
    stored = replace(p, W=p.W.astype(np.float32).astype(np.float64))        # W is stored as float32
    np.testing.assert_array_equal(separate(Engine(q), x).stems, separate(Engine(stored), x).stems)
    assert q.provenance["autoencoder"]["grooves"] == 8


def test_presets_without_an_encoder_keep_their_files(tmp_path):
    p = load_preset("default")
    assert p.autoencoder is None and not p.solver.uses_encoder
    text = (save_preset(p, tmp_path / "d") / "preset.toml").read_text()
    assert "start" not in tomllib.loads(text)["solver"] and "autoencoder" not in text
    assert not Engine(p).params.encoder


def test_asking_for_an_encoder_the_preset_lacks_is_a_one_line_error(ae_preset, tmp_path, capsys):
    plain = replace(ae_preset, autoencoder=None, onset_model=None)
    for solver in (replace(plain.solver, method="autoencoder"), replace(plain.solver, start="encoder")):
        with pytest.raises(UserError, match="rtdrums train --autoencoder"):
            Engine(replace(plain, solver=solver))
    folder = save_preset(plain, tmp_path / "p")
    cfg = tomllib.loads((folder / "preset.toml").read_text())
    cfg["solver"]["method"] = "autoencoder"
    (folder / "preset.toml").write_text(tomli_w.dumps(cfg))
    with pytest.raises(UserError) as e:
        load_preset(folder)
    assert "\n" not in str(e.value) and "rtdrums train --autoencoder" in str(e.value)
    from rtdrums.audio import write_audio
    write_audio(tmp_path / "in.wav", np.zeros(4800, np.float32), 48000)
    assert main(["separate", str(tmp_path / "in.wav"), "--out", str(tmp_path / "out"), "--preset", str(folder),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "rtdrums train --autoencoder" in err


def test_an_encoder_that_does_not_fit_the_templates_is_refused(ae_preset, tmp_path):
    folder = saved_with_arrays_edited(ae_preset, tmp_path / "p",
                                      lambda z: z.update(encoder_w2=z["encoder_w2"][:, :-1]))
    with pytest.raises(UserError, match="autoencoder: w2 has shape"):
        load_preset(folder)


def test_train_with_the_autoencoder_writes_a_preset_that_uses_it(tmp_path, rendered_groove):
    from conftest import FIXTURE_KIT

    out = tmp_path / "ae"
    assert main(["train", "--kit", str(FIXTURE_KIT), "--autoencoder", "solver", "--no-tune", "--out", str(out)]) == 0
    p = load_preset(out)
    assert p.solver.method == "autoencoder" and p.solver.iterations == 2 and p.autoencoder is not None
    assert p.provenance["autoencoder"]["kits"] == ["rtdrums test kit"]
    e = Engine(p)
    stems = separate(e, rendered_groove.mix[:2 * 48000]).stems
    assert np.all(np.isfinite(stems)) and e.mean_iterations <= 2.0


def test_the_autoencoder_solver_allocates_nothing_per_block(ae_preset, rendered_groove):
    """As tests/test_engine.py's test_no_allocation_per_block: each call allocates exactly its
    three arrays' runtime records (block, stems, events) and frees them; the body nothing."""
    from numba.core.runtime import _nrt_python, rtsys

    from rtdrums.events import EVENT_DTYPE

    engine = Engine(use_encoder(ae_preset, "solver"), max_block=1024)
    engine.warm()
    stems, events = np.zeros((1024, 4), np.float32), np.zeros(256, EVENT_DTYPE)
    x = rendered_groove.mix[:2 * 48000]
    blocks = [np.ascontiguousarray(x[i:i + 333]) for i in range(0, len(x), 333)]
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        for b in blocks:
            engine.process_into(b, stems, events)
        after = rtsys.get_allocation_stats()
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()
    assert engine.frames_processed > 500
    assert after.alloc - before.alloc == len(blocks) * 3
    assert after.alloc - after.free == before.alloc - before.free


def test_bench_times_the_three_solvers_of_a_preset_with_an_encoder(ae_preset):
    from rtdrums.commands.bench import bench_solvers

    rows = {r["solver"]: r for r in bench_solvers(use_encoder(ae_preset, "solver"), 1.0)}
    assert list(rows) == ["kl, previous frame", "kl, encoder start", "autoencoder + 2 it"]
    assert rows["autoencoder + 2 it"]["iterations"] == pytest.approx(2.0)
    assert rows["kl, previous frame"]["iterations"] > 2.0
    assert all(r["median_us"] > 0 for r in rows.values())
    with pytest.raises(UserError, match="rtdrums train --autoencoder"):
        bench_solvers(replace(ae_preset, autoencoder=None), 1.0)
