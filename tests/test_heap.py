"""The kernel's binary heap (EDF queue, closed-loop arrivals) against Python's heapq, as a state machine."""

import heapq

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from simulator.engine_numba import _heap_pop, _heap_push

CAPACITY = 64


class HeapMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.keys, self.ties, self.vals = np.empty(CAPACITY), np.empty(CAPACITY, np.int64), np.empty(CAPACITY, np.int64)
        self.n = 0
        self.model = []
        self.counter = 0

    @precondition(lambda self: self.n < CAPACITY)
    @rule(key=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), tie=st.integers(-3, 20))
    def push(self, key, tie):
        self.counter += 1
        self.n = _heap_push(self.keys, self.ties, self.vals, self.n, key, tie, self.counter)
        heapq.heappush(self.model, (key, tie, self.counter))

    @precondition(lambda self: self.n > 0)
    @rule()
    def pop(self):
        key, tie, val, self.n = _heap_pop(self.keys, self.ties, self.vals, self.n)
        expected_key, expected_tie, _ = heapq.heappop(self.model)
        assert (key, tie) == (expected_key, expected_tie)

    @invariant()
    def same_size_and_minimum(self):
        assert self.n == len(self.model)
        if self.n:
            assert (self.keys[0], self.ties[0]) == self.model[0][:2]


TestHeap = HeapMachine.TestCase
