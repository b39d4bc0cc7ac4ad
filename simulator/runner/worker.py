"""The real server: one worker, FIFO, batch 1 (SPEC "The device"), on the host's clock.

The worker takes the oldest waiting request and runs its stages one after another: each stage is the member's
forward pass with the output copied to the host, then the host's decision (`HostDecision`). The request stops when
the policy says so; the worker then takes the next one, or waits for the next arrival.

Arrivals (times relative to the run's origin ``t0``):

- open loop, ``release = "poll"``: the arrival process lives in the worker's thread. Request ``r`` arrives at
  ``t0 + arrival_s[r]``; a request arriving while the worker is busy waits; when the queue is empty the worker
  sleeps until `SPIN_S` before the next arrival and then polls the clock, so it starts the request within
  microseconds (a polling server: no thread wake-up in the measurement). With ``idle = "spin"`` it polls the
  clock for the whole idle time instead of sleeping (a busy-polling server: the CPU never idles).
- open loop, ``release = "thread"``: a dispatcher thread sleeps until each arrival time and puts the request on a
  queue; an idle worker blocks on the queue and is woken by the put (what a thread-per-role server pays: the
  sleep's overshoot and a thread wake-up). The release lag is recorded per request.
- closed loop with C clients: requests ``0..C-1`` arrive at ``t0``; request ``r >= C`` arrives when request
  ``r - C`` finishes (one FIFO worker finishes requests in order), as in the engines.

Latency is always measured from the request's arrival time (the trace's, or the finish that released it).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from simulator.inputs import SimulationInputs
from simulator.results import RawOutputs
from simulator.runner.decide import HostDecision

CLOCK = time.perf_counter
SPIN_S = 0.0005
LEAD_IN_S = 0.02
RELEASES = ("poll", "thread")
#: What an idle worker does until the next arrival (poll release): sleep, or poll the clock the whole time.
IDLES = {"sleep": SPIN_S, "spin": float("inf")}


def wait_until(t: float, spin_s: float = SPIN_S) -> None:
    """Return at clock time `t`: sleep until `spin_s` before it, then poll the clock."""
    remaining = t - CLOCK()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while CLOCK() < t:
        pass        # busy-wait: the last `spin_s` are polled, sleeping would overshoot


@dataclass(eq=False)
class StageLog:
    """What only a real run records: each stage run's request and the end of its compute (before the decision),
    and each request's release time (dispatcher thread only; NaN otherwise)."""

    request: np.ndarray
    compute_end_s: np.ndarray
    release_s: np.ndarray

    @classmethod
    def allocate(cls, n: int, n_stages: int) -> "StageLog":
        return cls(request=np.empty(n * n_stages, dtype=np.int32), compute_end_s=np.empty(n * n_stages),
                   release_s=np.full(n, np.nan))


class Worker:
    """Serves one request at a time: its stages in order until the policy stops it."""

    def __init__(self, stages, decision: HostDecision, inputs: SimulationInputs, labels: np.ndarray, n_classes: int,
                 idle: str = "sleep", dtype=np.float32):
        self.stages, self.decision, self.sample, self.labels = stages, decision, inputs.sample, labels
        self.history = np.empty((len(stages), n_classes), dtype=dtype)   # the logits decided on (logit_dtype)
        self.out = RawOutputs.allocate(inputs)
        self.log = StageLog.allocate(inputs.n_requests, len(stages))
        self.n_log = 0
        self.t0 = 0.0
        self.free_s = 0.0           # when the worker last finished a request (s from the origin), as the engines' free
        self.spin_s = IDLES[idle]

    def _log_stage(self, r: int, k: int, start: float, compute_end: float, end: float) -> None:
        out, i = self.out, self.n_log
        out.batch_start_s[i], out.batch_end_s[i], out.batch_stage[i] = start, end, k
        out.batch_size[i], out.batch_energy_j[i], out.batch_device[i] = 1, np.nan, 0
        self.log.request[i], self.log.compute_end_s[i] = r, compute_end
        self.n_log = i + 1

    def records(self) -> RawOutputs:
        """The engines' raw outputs of the run (device busy time = the sum of the requests' service times)."""
        out = self.out
        out.energy_j[:], out.device[:] = np.nan, 0
        out.device_busy_s[0] = float(np.sum(out.finish_s - out.start_s))
        out.device_energy_j[0] = np.nan
        return out.trimmed(self.n_log)

    def serve(self, r: int, arrival_s: float, queue_len: int) -> float:
        """Serve request `r` now; return its finish time (s from the origin)."""
        out, t0, s, decision, history = self.out, self.t0, int(self.sample[r]), self.decision, self.history
        out.arrival_s[r], out.queue_len[r], out.start_s[r] = arrival_s, queue_len, CLOCK() - t0
        energy_j = decision.dispatch_energy(idle=arrival_s > self.free_s)
        for k, stage in enumerate(self.stages):
            begin = CLOCK() - t0
            history[k] = stage(s)
            computed = CLOCK() - t0
            value, prediction = decision.combined(history[:k + 1])
            energy_j += decision.stage_energy(k, s)
            stop = decision.stops(r, s, k, value, prediction, CLOCK() - t0 - arrival_s, queue_len, energy_j)
            end = CLOCK() - t0
            self._log_stage(r, k, begin, computed, end)
            if stop:
                break
        out.finish_s[r], out.stages_run[r] = end, k + 1
        out.prediction[r], out.correct[r] = prediction, prediction == self.labels[s]
        self.free_s = end
        return end

    def run_open_poll(self, arrival_s: np.ndarray) -> None:
        """Open loop with the arrival process in this thread (see the module docstring)."""
        self.t0 = t0 = CLOCK() + LEAD_IN_S
        times, n, arrived = arrival_s.tolist(), arrival_s.shape[0], 0
        for r in range(n):
            if times[r] > CLOCK() - t0:
                wait_until(t0 + times[r], self.spin_s)
            now = CLOCK() - t0
            while arrived < n and times[arrived] <= now:
                arrived += 1
            self.serve(r, times[r], max(arrived - r - 1, 0))

    def run_open_thread(self, arrival_s: np.ndarray) -> None:
        """Open loop with a dispatcher thread releasing requests onto a queue (see the module docstring)."""
        self.t0 = CLOCK() + LEAD_IN_S
        released: queue.SimpleQueue = queue.SimpleQueue()
        dispatcher = threading.Thread(target=self._release, args=(arrival_s, released), daemon=True)
        dispatcher.start()
        for _ in range(arrival_s.shape[0]):
            r = released.get()
            self.serve(r, float(arrival_s[r]), released.qsize())
        dispatcher.join()

    def _release(self, arrival_s: np.ndarray, released: queue.SimpleQueue) -> None:
        for r in range(arrival_s.shape[0]):
            wait_until(self.t0 + arrival_s[r], spin_s=0.0)
            self.log.release_s[r] = CLOCK() - self.t0
            released.put(r)

    def run_closed(self, clients: int) -> None:
        """Closed loop: `clients` requests at the origin, then one more each time a request finishes."""
        n = self.sample.shape[0]
        self.t0 = CLOCK()
        finish = np.empty(n)
        for r in range(n):
            arrival = 0.0 if r < clients else finish[r - clients]
            waiting = min(n, clients + r) - r - 1
            finish[r] = self.serve(r, arrival, waiting)
