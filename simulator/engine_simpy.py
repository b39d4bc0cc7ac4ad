"""The SimPy reference engine: the contract's semantics written for clarity, one process per request.

It is the oracle of the tests: on any input and seed its per-request outputs equal the Numba engine's bit for
bit. Same-time events are ordered by SimPy's ``(time, priority, sequence)`` with these priorities:

- ``ARRIVAL`` (0): open-loop arrivals, in request order;
- closed-loop arrivals: strictly between 0 and 1, increasing with the id of the request whose finish released
  them (the clients that started at time 0 come first);
- ``STAGE_END`` (1, SimPy's NORMAL): the end of a batch-stage;
- ``DISPATCH + d`` (2 + d): device ``d`` takes its next batch, lower device index first.

So every request that arrives at time t is queued before any device dispatches at t.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np
import simpy
from simpy.events import Event

from simulator.engine_numba import released_during, wakeup_factor
from simulator.inputs import SimulationInputs
from simulator.policies import RequestState, should_stop
from simulator.results import RawOutputs

ARRIVAL = 0
STAGE_END = 1
DISPATCH = 2


class _Environment(simpy.Environment):
    """SimPy's environment with scheduling at an absolute time.

    ``schedule(event, priority, delay)`` puts the event at ``now + delay``, and not every time ``t`` is
    ``now + delay`` for some float ``delay`` (0.0005 + d skips 0.005); arrivals must land exactly on their
    times, so they are pushed onto the event queue at ``t`` itself, as ``schedule`` would otherwise do.
    """

    def schedule_at(self, event: Event, priority: float, t: float) -> None:
        assert t >= self._now, "cannot schedule in the past"
        heapq.heappush(self._queue, (t, priority, next(self._eid), event))


class _At(Event):
    """An event that fires at the absolute time `t` (exactly) with the given priority."""

    def __init__(self, env: _Environment, t: float, priority: float):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule_at(self, priority, t)


def simulate_simpy(inputs: SimulationInputs) -> RawOutputs:
    """Run the SimPy reference engine on prepared `inputs`."""
    env = _Environment()
    model = _Model(env, inputs)
    env.run()
    return model.out.trimmed(model.n_log)


class _Model:
    """The served system: a shared queue, one worker process per device, one process per request."""

    def __init__(self, env: simpy.Environment, inputs: SimulationInputs):
        self.env, self.inp = env, inputs
        self.custom_params = inputs.policy.custom_params.copy()    # per run, as the Numba engine's
        self.out = RawOutputs.allocate(inputs)
        self.n_log = 0
        self.n_admitted = 0
        self.queue = [] if inputs.edf else deque()
        self.wakeup = env.event()
        self.done = {}
        self.free_since = [0.0] * inputs.n_devices
        cap_w, window_s = inputs.power_cap
        self.tokens = [cap_w * window_s] * inputs.n_devices
        self.token_time = [0.0] * inputs.n_devices
        wake_idle_s, wake_factor = inputs.stacked_wakeup()
        member_idle_s, member_factor = inputs.stacked_member_idle()
        self.tables = [_Tables(d, (wake_idle_s[i], wake_factor[i]), (member_idle_s[i], member_factor[i]))
                       for i, d in enumerate(inputs.devices)]
        # when each stage's member last ended on each device (0: as if at time 0; see engine_numba._cold_scale)
        self.member_end = np.zeros((inputs.n_devices, inputs.n_stages))
        self.speed, self.speed_step_s = inputs.stacked_speed()
        # arrivals cost a busy device (open loop; see engine_numba.released_during)
        self.releasing = not inputs.clients and any(t.release_cost_s > 0 for t in inputs.devices)
        # each device's busy period: wake-up factor, at its first stage, decay**j (see engine_numba._warm_step)
        self.wake_f, self.first, self.power = [1.0] * inputs.n_devices, [True] * inputs.n_devices, \
            [1.0] * inputs.n_devices
        for d in range(inputs.n_devices):
            env.process(self._worker(d))
        if inputs.clients:
            for c in range(inputs.clients):
                self._schedule_closed_arrival(0.0, c - inputs.clients)
        else:
            env.process(self._open_source())

    # ------------------------------------------------------------------------------------------- arrivals

    def _open_source(self):
        """Release the open-loop requests at their arrival times."""
        for r, t in enumerate(self.inp.arrival_s):
            yield _At(self.env, float(t), ARRIVAL)
            self._arrive(r, float(t))

    def _schedule_closed_arrival(self, t: float, tie: int) -> None:
        """A client sends its next request at `t`; ties ordered by `tie` (the finished request's id)."""
        n, clients = self.inp.n_requests, self.inp.clients
        priority = (tie + clients + 1) / (n + clients + 2)
        _At(self.env, t, priority).callbacks.append(lambda _event: self._closed_arrival(t))

    def _closed_arrival(self, t: float) -> None:
        if self.n_admitted < self.inp.n_requests:
            self._arrive(self.n_admitted, t)

    def _arrive(self, r: int, t: float) -> None:
        self.n_admitted += 1
        if self.inp.clients:
            self.out.arrival_s[r] = t      # open-loop arrival times are the inputs' own
        self.env.process(self._request(r))

    def _request(self, r: int):
        """A request: joins the queue, wakes idle devices, waits until a device finishes it."""
        self.done[r] = self.env.event()
        if self.inp.edf:
            deadline = self.out.arrival_s[r] + _per_request(self.inp.deadline_s, r)
            heapq.heappush(self.queue, (deadline, r))
        else:
            self.queue.append(r)
        if not self.wakeup.triggered:
            self.wakeup.succeed()
        yield self.done[r]

    # ------------------------------------------------------------------------------------------- devices

    def _worker(self, d: int):
        """Device d: whenever free and requests wait, take up to max_batch of them and serve the batch."""
        while True:
            yield _At(self.env, self.env.now, DISPATCH + d)
            if not self.queue:
                if self.wakeup.triggered:
                    self.wakeup = self.env.event()
                yield self.wakeup
                continue
            batch = [self._take() for _ in range(min(self.inp.max_batch, len(self.queue)))]
            yield from self._serve(d, batch, queue_len=len(self.queue))
            self.free_since[d] = self.env.now

    def _take(self) -> int:
        return heapq.heappop(self.queue)[1] if self.inp.edf else self.queue.popleft()

    def _serve(self, d: int, batch: list[int], queue_len: int):
        """Run `batch` on device d stage by stage until the policy stops every request."""
        env, out, inp = self.env, self.out, self.inp
        self._drain_idle(d)
        for r in batch:
            out.start_s[r], out.device[r], out.energy_j[r], out.queue_len[r] = env.now, d, 0.0, queue_len
        lead = batch[0]
        busy, spent = 0.0, 0.0
        idle_s = env.now - self.free_since[d]
        if idle_s > 0:
            self.wake_f[d], self.first[d] = self.tables[d].wakeup(idle_s), True
        extra_s = self.tables[d].dispatch_s[int(idle_s > 0)]
        for k in range(inp.n_stages):
            m = len(batch)
            scale = max(inp.cost_scale[k, inp.sample[r]] for r in batch)
            if self.tables[d].cooling:
                scale = scale * self.tables[d].member_cold(env.now - self.member_end[d, k])
            sp = self.speed[d, int(env.now / self.speed_step_s[d]) % self.speed.shape[1]]
            wake = self._warm_step(d)
            dur, energy = self.tables[d].stage_cost(k, m, inp.draw[lead, k], scale, wake * sp, extra_s * sp)
            if self.releasing:
                extra = released_during(inp.arrival_s, env.now, dur, self.tables[d].release_cost_s * sp)
                dur, energy = dur + extra, energy + self.tables[d].idle_power_w * extra
            extra_s = 0.0
            start = env.now
            yield env.timeout(dur)
            self.member_end[d, k] = env.now
            busy += dur
            spent += energy
            self._account(d, k, m, start, energy)
            batch = [r for r in batch if not self._decide(d, k, m, r, energy / m)]
            if not batch:
                break
        out.device_busy_s[d] += busy
        out.device_energy_j[d] += spent

    def _warm_step(self, d: int) -> float:
        """The wake-up factor of device d's next stage in its busy period (`engine_numba._warm_step`)."""
        if self.first[d]:
            self.first[d], self.power[d] = False, self.tables[d].wakeup_decay
            return self.wake_f[d]
        wake = 1.0 + (self.wake_f[d] - 1.0) * self.power[d]
        self.power[d] *= self.tables[d].wakeup_decay
        return wake

    def _decide(self, d: int, k: int, m: int, r: int, share_j: float) -> bool:
        """Attribute the stage's energy share to request r; return True (and finish r) if it stops."""
        inp, out, tab = self.inp, self.out, self.tables[d]
        s = inp.sample[r]
        out.energy_j[r] += share_j
        stop = k == inp.n_stages - 1
        if not stop:
            state = RequestState(
                k, inp.n_stages, inp.stages.signal[k, s], inp.stages.prediction[k, s], inp.stages.correct[k, s],
                self.env.now - out.arrival_s[r], _per_request(inp.deadline_s, r), tab.est_latency_s[k + 1, m - 1],
                out.energy_j[r], tab.est_energy_j[k + 1, m - 1], _per_request(inp.energy_budget_j, r),
                out.queue_len[r], m, self.tokens[d], tab.est_stage_energy_j[k + 1, m - 1])
            stop = bool(should_stop(state, inp.policy.params)) or (
                inp.policy.custom is not None and bool(inp.policy.custom(state, self.custom_params)))
        if stop:
            self._finish(r, k, s)
        return stop

    def _finish(self, r: int, k: int, s: int) -> None:
        out, inp = self.out, self.inp
        out.finish_s[r], out.stages_run[r] = self.env.now, k + 1
        out.prediction[r], out.correct[r] = inp.stages.prediction[k, s], inp.stages.correct[k, s]
        self.done.pop(r).succeed()
        if inp.clients:
            self._schedule_closed_arrival(self.env.now, r)

    # ------------------------------------------------------------------------------------------- accounting

    def _account(self, d: int, k: int, m: int, start: float, energy: float) -> None:
        """Record a finished batch-stage: power-cap bucket and batch-stage log."""
        out, now = self.out, self.env.now
        self._refill(d, now, energy)
        if self.inp.record_batches:
            i = self.n_log
            out.batch_start_s[i], out.batch_end_s[i], out.batch_stage[i] = start, now, k
            out.batch_size[i], out.batch_energy_j[i], out.batch_device[i] = m, energy, d
            self.n_log += 1

    def _drain_idle(self, d: int) -> None:
        """Power-cap bucket at a dispatch: refill up to now, minus the idle energy since the device was free."""
        self._refill(d, self.env.now, self.tables[d].idle_power_w * (self.env.now - self.free_since[d]))

    def _refill(self, d: int, t: float, drain_j: float) -> None:
        cap_w, window_s = self.inp.power_cap
        if cap_w < np.inf:
            self.tokens[d] = min(cap_w * window_s, self.tokens[d] + cap_w * (t - self.token_time[d]) - drain_j)
            self.token_time[d] = t


class _Tables:
    """One device's cost tables, read by the reference engine."""

    def __init__(self, tables, wakeup: tuple, member_idle: tuple):
        self.latency_s = tables.latency_s
        self.energy_j = tables.energy_j
        self.est_latency_s = tables.est_latency_s
        self.est_stage_energy_j = tables.est_stage_energy_j
        self.est_energy_j = tables.est_energy_j
        self.overhead_s = tables.overhead_s
        self.idle_power_w = float(tables.idle_power_w)
        self.dispatch_s = tables.dispatch_s          # a batch taken off the queue, one dispatched to an idle device
        self.release_cost_s = float(tables.release_cost_s)
        self.wakeup_decay = float(tables.wakeup_decay)
        self.wake_idle_s, self.wake_factor = wakeup
        self.member_idle_s, self.member_factor = member_idle
        self.cooling = bool(np.isfinite(self.member_idle_s).any())

    def wakeup(self, idle_s: float) -> float:
        """Slowdown factor of the first stage after `idle_s` seconds idle."""
        return float(wakeup_factor(idle_s, self.wake_idle_s, self.wake_factor))

    def member_cold(self, idle_s: float) -> float:
        """Slowdown factor of a stage whose member last ended `idle_s` seconds ago."""
        return float(wakeup_factor(idle_s, self.member_idle_s, self.member_factor))

    def stage_cost(self, k: int, m: int, draw: int, scale: float, wake: float, extra_s: float):
        """Duration (s) and energy (J) of stage k on a batch of m requests at cost scale `scale`; the first stage
        in a busy period pays the wake-up factor `wake`, the first of a batch the dispatch overhead `extra_s`."""
        dur = (self.latency_s[k, m - 1, draw] * scale + self.overhead_s[k]) * wake + extra_s
        energy = (self.energy_j[k, m - 1] * scale + self.idle_power_w * self.overhead_s[k]) * wake \
            + self.idle_power_w * extra_s
        return dur, energy


def _per_request(values: np.ndarray, r: int) -> float:
    return values[r] if values.shape[0] > 1 else values[0]
