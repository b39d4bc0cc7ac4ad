"""Combining stages and confidence signals on vectors with known answers."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import FlexsimError
from simulator.signals import combine, confidence, softmax, stage_signals


def test_margin_maxprob_entropy_on_known_vectors():
    p = np.array([[0.5, 0.3, 0.2]])
    assert confidence(p, "margin")[0] == pytest.approx(0.2)
    assert confidence(p, "maxprob")[0] == pytest.approx(0.5)
    assert confidence(np.array([[1 / 3, 1 / 3, 1 / 3]]), "entropy")[0] == pytest.approx(0.0, abs=1e-12)
    assert confidence(np.array([[1.0, 0.0, 0.0]]), "entropy")[0] == pytest.approx(1.0)


def test_mean_combiner_is_the_running_mean_and_last_is_the_last():
    probs = softmax(np.random.default_rng(0).normal(size=(3, 5, 4)))
    mean = combine(probs, "mean")
    assert np.allclose(mean[2], probs.mean(axis=0))
    assert np.allclose(mean[0], probs[0])
    assert np.array_equal(combine(probs, "last"), probs)


def test_prediction_ties_go_to_the_lowest_class():
    logits = np.zeros((1, 1, 4), dtype=np.float32)
    logits[0, 0, [1, 3]] = 2.0
    s = stage_signals(logits, np.array([3]), [0])
    assert s.prediction[0, 0] == 1 and not s.correct[0, 0]
    assert s.signal[0, 0] == 0.0


@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 6), st.sampled_from(["margin", "maxprob", "entropy"]),
       st.sampled_from(["mean", "last"]), st.integers(0, 1000))
def test_signals_lie_in_unit_interval(n_stages, n_samples, n_classes, signal, combiner, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n_stages, n_samples, n_classes)).astype(np.float32)
    s = stage_signals(logits, rng.integers(0, n_classes, n_samples), list(range(n_stages)), combiner, signal)
    assert np.all((s.signal >= 0.0) & (s.signal <= 1.0))
    assert s.signal.shape == s.prediction.shape == s.correct.shape == (n_stages, n_samples)


def test_unknown_combiner_and_signal_are_named():
    with pytest.raises(FlexsimError, match="combiner"):
        combine(np.ones((1, 1, 2)), "median")
    with pytest.raises(FlexsimError, match="signal"):
        confidence(np.ones((1, 2)), "gini")


def test_softmax_of_logits_at_the_float_range_ends_is_exact_and_silent():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probs = softmax(np.array([[1.7e308, -1.7e308, 0.0]]))
    assert probs.tolist() == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize("n_classes", [5, 12, 13, 18])
def test_a_uniform_prediction_stops_at_a_threshold_of_zero(n_classes, tmp_path):
    """1 - H/ln C of a uniform vector rounds to -2.2e-16 for these class counts: T = 0 must still stop."""
    from simulator import simulate
    from simulator.logits import LogitCache, save_cache

    save_cache(tmp_path / "u.npz", LogitCache(logits=np.zeros((2, 1, n_classes), dtype=np.float32),
                                              labels=np.array([0])))
    result = simulate(logits=str(tmp_path / "u.npz"), members=(0, 1), signal="entropy", thresholds=(0.0,),
                      requests=3)
    assert list(result.requests.to_dict()["stages_run"]) == [1, 1, 1]
