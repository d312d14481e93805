"""What `rtdrums train --kit` and `rtdrums eval --calibrate` hold of a kit's samples: each hit cut
to what training reads (hit_samples), the kit's decoded samples freed before the learned trigger's
fit; neither changes what is learnt (docs/training-speed.md)."""

from __future__ import annotations

import numpy as np

from rtdrums.preset import load_preset
from rtdrums.training.kits import Kit, load_kit
from rtdrums.training.render import render_groove
from rtdrums.training.train import build_preset, calibrate, hit_samples, hits_from_kit, kit_hit_sets, learn_templates

from conftest import FIXTURE_KIT


def test_cut_hits_learn_the_same_templates_references_and_cross_talk(fixture_kit):
    settings = load_preset("default").stft
    n = hit_samples(settings)
    whole, _ = hits_from_kit(fixture_kit, settings.sample_rate)
    cut, _ = hits_from_kit(fixture_kit, settings.sample_rate, n)
    longer = 0
    for category, items in whole.items():
        for (a, va), (b, vb) in zip(items, cut[category], strict=True):
            assert va == vb and len(b) == min(len(a), n) and b.base is None     # a copy, not a view
            np.testing.assert_array_equal(b, a[:n])
            longer += len(a) > n
    assert longer >= 8                       # snares, hats, toms and cymbals ring past the cut
    W_whole, W_cut = learn_templates(whole, settings), learn_templates(cut, settings)
    assert list(W_whole) == list(W_cut)
    for c in W_whole:
        np.testing.assert_array_equal(W_whole[c], W_cut[c])
    short, _ = hits_from_kit(fixture_kit, settings.sample_rate, n // 2)             # cuts what is read
    assert any(not np.array_equal(W_whole[c], W) for c, W in learn_templates(short, settings).items())
    a = calibrate(build_preset(W_whole, settings, "whole", {}), whole)
    b = calibrate(build_preset(W_cut, settings, "cut", {}), cut)
    assert [(d.reference, d.leak) for d in a.drums] == [(d.reference, d.leak) for d in b.drums]
    assert a.residual_leak == b.residual_leak


def test_train_kit_and_eval_calibrate_read_a_kit_alike(fixture_kit):
    """kit_hit_sets, through which `train --kit` and `eval --calibrate` (protocol.trained_on) read
    kits, given folders or loaded kits: every hit cut to hit_samples, the provenance kept."""
    settings = load_preset("default").stft
    kits, hit_sets, sources = kit_hit_sets([FIXTURE_KIT, fixture_kit], settings)
    whole, provenance = hits_from_kit(fixture_kit, settings.sample_rate)
    n = hit_samples(settings)
    assert kits[1] is fixture_kit and kits[0].name == fixture_kit.name and sources == [provenance] * 2
    for hits in hit_sets:
        assert list(hits) == list(whole)
        for category, items in whole.items():
            for (a, va), (b, vb) in zip(items, hits[category], strict=True):
                assert va == vb
                np.testing.assert_array_equal(b, a[:n])
    assert max(len(b) for hits in hit_sets for items in hits.values() for b, _ in items) == n


def test_forgotten_samples_are_decoded_again_and_render_the_same(validation_grooves):
    kit = load_kit(FIXTURE_KIT)
    first = render_groove(validation_grooves[0], kit, 48000, max_seconds=4.0, end_s=3.0)
    assert kit._cache
    kit.forget_decoded()
    assert not kit._cache
    again = render_groove(validation_grooves[0], kit, 48000, max_seconds=4.0, end_s=3.0)
    np.testing.assert_array_equal(first.mix, again.mix)
    assert first.onsets == again.onsets


def test_samples_given_in_memory_are_kept():
    sound = np.linspace(1.0, 0.0, 480, dtype=np.float32)
    kit = Kit.from_audio("takes", {"kick": [sound]}, 48000)
    kit.forget_decoded()
    np.testing.assert_array_equal(kit.sample("kick", 1.0, 48000), sound)
    np.testing.assert_array_equal(kit.sample("kick", 1.0, 48000, samples=100), sound[:100])


def test_a_one_component_ratio_is_the_matmuls_exactly():
    from rtdrums.dsp.nmf import EPS, _ratio

    rng = np.random.default_rng(3)
    V, W, H = (rng.random(shape, dtype=np.float32) for shape in ((257, 300), (257, 1), (1, 300)))
    np.testing.assert_array_equal(_ratio(V, W, H, np.empty_like(V)), V / (np.matmul(W, H) + EPS))
