"""The speed floor of a single-server FIFO queue: the bare Lindley recursion."""

from simulator._jit import jit


@jit
def lindley(arrival_s, service_s, start_s, finish_s):
    """``start = max(arrival, previous finish)``, ``finish = start + service``, written into the outputs."""
    free = 0.0
    for i in range(arrival_s.shape[0]):
        start = max(arrival_s[i], free)
        free = start + service_s[i]
        start_s[i] = start
        finish_s[i] = free
