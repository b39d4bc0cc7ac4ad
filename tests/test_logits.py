"""Logit caches: built-in caches, validation of every array, and saving."""

import numpy as np
import pytest

from simulator.errors import FlexsimError
from simulator.logits import LogitCache, load_cache, save_cache


def test_builtin_caches():
    test = load_cache("fmnist")
    assert test.logits.shape == (8, 10000, 10) and test.model_names[0] == "fmnist-cnn-w32"
    assert test.model_names[6] == "fmnist-cnn-w8" and test.model_names[7] == "fmnist-cnn-w64"
    train = load_cache("fmnist-train")
    assert train.logits.shape == (8, 60000, 10) and train.logits.dtype == np.float16


def test_builtin_cpu_cache_is_the_runners_ensemble():
    from simulator.runner.bundle import CACHE_PATH

    cpu = load_cache("fmnist-cpu")
    assert cpu.logits.shape == (6, 1000, 10) and cpu.source == "fmnist-cpu"
    assert cpu.model_names == ("fmnist-cnn-w8",) * 4 + ("fmnist-cnn-w16", "fmnist-cnn-w32")
    np.testing.assert_array_equal(cpu.logits, load_cache(str(CACHE_PATH)).logits)


def _cache(**changes):
    fields = dict(logits=np.zeros((2, 3, 4), dtype=np.float32), labels=np.array([0, 1, 3]))
    fields.update(changes)
    return LogitCache(**fields)


@pytest.mark.parametrize("changes, message", [
    (dict(logits=np.full((2, 3, 4), np.nan, dtype=np.float32)), r"logits\[0, 0, 0\] is nan"),
    (dict(logits=np.full((2, 3, 4), np.inf, dtype=np.float32)), "NaN/inf"),
    (dict(labels=np.array([0, 1])), "labels has 2 samples but logits has 3"),
    (dict(labels=np.array([0, 1, 4])), r"labels\[2\] = 4 is outside"),
    (dict(labels=np.array([0.0, 1.0, 2.0])), "integer"),
    (dict(logits=np.zeros((3, 4), dtype=np.float32)), "3-D"),
    (dict(logits=np.zeros((2, 3, 4), dtype=np.int32)), "float16/float32"),
    (dict(cost_scale=np.ones((2, 2))), "cost_scale must have shape"),
    (dict(cost_scale=np.zeros((2, 3))), r"cost_scale\[0, 0\] = 0.0"),
    (dict(model_names="ab"), "model_names must be a tuple of names"),
    (dict(model_names=(1, 2)), "model_names must be a tuple of names"),
    (dict(model_names=("a",)), r"the model names \(model_names or widths\) have 1 entries"),
])
def test_invalid_caches_name_the_array(changes, message):
    with pytest.raises(FlexsimError, match=message):
        _cache(**changes)


def test_file_errors(tmp_path):
    with pytest.raises(FlexsimError, match="unknown cache name"):
        load_cache("cifar")
    with pytest.raises(FlexsimError, match="does not exist"):
        load_cache(tmp_path / "x.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FlexsimError, match="cannot read"):
        load_cache(junk)
    np.savez(tmp_path / "nolabels.npz", logits=np.zeros((1, 2, 2), dtype=np.float32))
    with pytest.raises(FlexsimError, match="no array 'labels'"):
        load_cache(tmp_path / "nolabels.npz")


def test_save_and_load_round_trip(tmp_path):
    c = _cache(cost_scale=np.full((2, 3), 0.5), model_names=("a", "b"))
    save_cache(tmp_path / "c.npz", c)
    d = load_cache(tmp_path / "c.npz")
    assert np.array_equal(d.logits, c.logits) and np.array_equal(d.cost_scale, c.cost_scale)
    assert d.model_names == ("a", "b")


@pytest.mark.parametrize("extra, message", [
    (dict(cost_scale=np.full((2, 3), "a")), "cost_scale must be real numbers"),
    (dict(cost_scale=np.full((2, 3), 1e308)), r"cost_scale\[0, 0\] = 1e\+308 \(must be > 0 and <= 1e\+06\)"),
    (dict(widths=np.array([1.5, np.nan])), "widths must be a 1-D array of whole numbers >= 1"),
    (dict(model_names=np.array([["a", "b"], ["c", "d"]])), "model_names must be a 1-D array of names"),
    (dict(model_names=np.array(["a", " "])), r"model_names\[1\] is empty"),
    (dict(labels=np.array([2 ** 63 + 1, 0, 1], dtype=np.uint64)), r"labels\[0\] = 9223372036854775809 is not"),
])
def test_malformed_arrays_of_a_cache_file_are_named(tmp_path, extra, message):
    arrays = {"logits": np.zeros((2, 3, 4), dtype=np.float32), "labels": np.array([0, 1, 2]), **extra}
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(FlexsimError, match=message):
        load_cache(tmp_path / "c.npz")


def test_a_cache_holds_its_checked_arrays_read_only():
    logits = np.zeros((2, 3, 4), dtype=np.float32)
    cache = LogitCache(logits=logits, labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="read-only"):
        cache.logits[0, 0, 0] = np.nan                  # the NaN check cannot be bypassed through the cache
    assert logits.flags.writeable                       # the caller's array is left as it was
