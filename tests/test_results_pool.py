"""The outputs' memory pool (`simulator.results`): a run's outputs reuse the memory of a result that is gone, and
never that of a result still referred to."""

import numpy as np

from simulator.config import RunConfig
from simulator.engine_numba import simulate_numba
from simulator.results import POOL_MIN_BYTES, clear_pool
from simulator.run import prepare

# 40,000 requests: 1.4 MB of per-request outputs, a block the pool keeps
INPUTS = prepare(RunConfig(requests=40_000, seed=3))


def test_the_outputs_are_large_enough_to_be_pooled():
    raw = simulate_numba(INPUTS)
    assert raw.finish_s.base.nbytes >= POOL_MIN_BYTES


def test_a_result_that_is_gone_gives_its_memory_to_the_next_run():
    clear_pool()
    raw = simulate_numba(INPUTS)
    address = raw.finish_s.ctypes.data
    del raw
    assert simulate_numba(INPUTS).finish_s.ctypes.data == address


def test_results_still_referred_to_keep_their_memory_and_values():
    clear_pool()
    seeds = [prepare(RunConfig(requests=40_000, seed=seed)) for seed in range(4, 8)]   # other values each run
    kept = [simulate_numba(INPUTS)]
    copies = [kept[0].finish_s.copy()]
    finish_view = kept[0].finish_s[10:20]        # a view alone keeps the whole block
    del kept[0]
    for inputs in seeds:
        raw = simulate_numba(inputs)
        assert not np.shares_memory(raw.finish_s, finish_view)
        kept.append(raw)
        copies.append(raw.finish_s.copy())
    np.testing.assert_array_equal(finish_view, copies[0][10:20])
    for raw, copy in zip(kept, copies[1:]):
        np.testing.assert_array_equal(raw.finish_s, copy)
        for other in kept:
            assert other is raw or not np.shares_memory(raw.start_s, other.start_s)
