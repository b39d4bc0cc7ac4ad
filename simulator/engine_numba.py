"""The Numba engine: the whole event loop in compiled code over arrays.

Semantics: ``docs/semantics.md`` (SPEC batch-1, greedy dynamic batching, replicas sharing one queue,
FIFO or EDF, open or closed loop). Two kernels share the inlined helpers that define a stage's cost and the
decision: `_single_server` (one device, batch 1, FIFO, open loop: a Lindley recursion with the stage loop inside)
and `_general` (everything else). The general kernel keeps a monotone clock and dispatches batches in time order:

1. the clock moves to the earliest time a device is free (never backwards);
2. every request that has arrived by then joins the queue (arrivals before dispatches at equal times);
3. if the queue is empty, the clock moves to the next arrival;
4. the lowest-numbered free device takes up to ``max_batch`` requests and runs them stage by stage until the
   policy stops each of them; its finishes are recorded and, in a closed loop, become future arrivals.

Same-time events are ordered (time, kind, tie): arrivals before dispatches, closed-loop arrivals by the id of
the request whose finish released them, dispatches by device index. The SimPy engine orders them the same way.
"""

from __future__ import annotations

import functools
from types import FunctionType

import numpy as np

from numba import njit, types
from numba.extending import overload

from simulator._jit import JIT_OPTIONS, jit, jit_inline
from simulator.inputs import SimulationInputs
from simulator.policies import RequestState, load_level, stop_rule
from simulator.results import RawOutputs


def simulate_numba(inputs: SimulationInputs) -> RawOutputs:
    """Run the Numba engine on prepared `inputs`."""
    out = RawOutputs.allocate(inputs)
    policy = inputs.policy
    args = _kernel_args(inputs, out)
    if policy.custom is None:
        n_log = _kernel_builtin(policy.params, *args)
    else:
        # a copy per run: a policy that writes into its params must not change the next run
        n_log = _custom_kernel()(policy.custom, policy.custom_params.copy(), policy.params, *args)
    return out.trimmed(n_log)


@functools.cache
def _custom_kernel():
    """The kernel for a user's policy: copies of `_kernel` and the two kernels it chooses from, compiled without the
    disk cache. A user's function is another type in every process, so cached code for it would never be read
    again, and each process wrote ~0.9 MB more of it beside the package (2026-12-07: 361 MB had piled up)."""
    single, general = (_uncached(k) for k in (_single_server, _general))
    return _uncached(_kernel, _single_server=single, _general=general)


def _uncached(dispatcher, **callees):
    """A copy of jitted `dispatcher` compiled with the package's options but no disk cache, the global names
    `callees` in its code bound to the given dispatchers instead."""
    function = dispatcher.py_func
    copy = FunctionType(function.__code__, {**function.__globals__, **callees}, function.__name__,
                        function.__defaults__, function.__closure__)
    return njit(**{**JIT_OPTIONS, "cache": False})(copy)


def _kernel_args(inp: SimulationInputs, out: RawOutputs) -> tuple:
    """The kernel's inputs and outputs, grouped into five tuples of arrays and scalars, and the `variant`."""
    cap_w, window_s = inp.power_cap
    arrival_padded = out.arrival_s.base     # RawOutputs keeps arrival times followed by +inf sentinels
    table = per_sample_table(inp)
    wake_idle_s, wake_factor = inp.stacked_wakeup()
    member_idle_s, member_factor = inp.stacked_member_idle()
    speed, speed_step_s = inp.stacked_speed()
    # None where no device has a table: the kernel is then compiled without the member-idle code (`_cold_scale`)
    member = (member_idle_s, member_factor) if np.isfinite(member_idle_s).any() else None
    # None in a closed loop or where no device has a release cost: compiled without it (`_with_releases`)
    release_s = inp.stacked("release_cost_s")
    release = release_s if (release_s > 0).any() and not inp.clients else None
    device = (inp.stacked("latency_s"), inp.stacked("energy_j"), inp.stacked("est_latency_s"),
              inp.stacked("est_stage_energy_j"), inp.stacked("est_energy_j"), inp.stacked("overhead_s"),
              inp.stacked("idle_power_w"), inp.stacked("dispatch_s"), wake_idle_s, wake_factor,
              inp.stacked("wakeup_decay"), member, release, speed, speed_step_s)
    work = (arrival_padded, inp.clients, inp.sample, inp.draw, inp.deadline_s, inp.energy_budget_j,
            inp.max_batch, inp.edf, cap_w, window_s)
    records = (out.start_s, out.finish_s, out.stages_run, out.prediction, out.correct, out.energy_j,
               out.device, out.queue_len)
    log = (out.batch_start_s, out.batch_end_s, out.batch_stage, out.batch_size, out.batch_energy_j,
           out.batch_device, out.device_busy_s, out.device_energy_j)
    return table, device, work, records, log, _variant(inp, out, wake_idle_s, speed_step_s)


def _variant(inp: SimulationInputs, out: RawOutputs, wake_idle_s: np.ndarray, speed_step_s: np.ndarray) -> tuple:
    """Which of the kernels' run-time features a run uses, as ``(dynamic, logging)``, each True or None: None
    compiles the feature's code out of the kernel (`_present`), so that a run without it does not pay for its tests
    in the hot loop (2026-12-07: the kernel for 1M requests of the benchmark, 27.7 ms with the tests, 19.8 ms
    without). `dynamic`: a speed process, a wake-up, a power cap, load levels or a policy that reads the request's
    state; `logging`: the batch-stage log is recorded."""
    params = inp.policy.params
    dynamic = (np.isfinite(wake_idle_s).any() or np.isfinite(speed_step_s).any() or inp.power_cap[0] < np.inf
               or params.level_queue_len.shape[0] > 1 or params.deadline_aware or params.energy_aware
               or params.power_capped or params.oracle or inp.policy.custom is not None)
    return (True if dynamic else None), (True if out.batch_start_s.shape[0] > 0 else None)


@jit
def _kernel_builtin(params, table, device, work, records, log, variant):
    """The kernel with the built-in policies only (cached on disk across processes)."""
    return _kernel(None, np.zeros(0), params, table, device, work, records, log, variant)


def _custom_stop(custom, state, custom_params):
    """A user's policy decision; no policy (None) never stops."""
    return False if custom is None else bool(custom(state, custom_params))


def _present(flag):
    """Whether `flag` (a user's policy, a `_variant` flag) is not None, as a compile-time constant: the code it
    guards is compiled out where it is None."""
    return flag is not None


@overload(_present)
def _present_impl(flag):
    present = not isinstance(flag, types.NoneType)
    return lambda flag: present


@overload(_custom_stop)
def _custom_stop_impl(custom, state, custom_params):
    # Chosen at compile time: passing no function object keeps the built-in kernel cacheable.
    if isinstance(custom, types.NoneType):
        return lambda custom, state, custom_params: False
    return lambda custom, state, custom_params: custom(state, custom_params)


# ----------------------------------------------------------------------------------------------- heaps

@jit_inline
def _heap_less(keys, ties, i, j):
    return keys[i] < keys[j] or (keys[i] == keys[j] and ties[i] < ties[j])


@jit_inline
def _heap_swap(keys, ties, vals, i, j):
    keys[i], keys[j] = keys[j], keys[i]
    ties[i], ties[j] = ties[j], ties[i]
    vals[i], vals[j] = vals[j], vals[i]


@jit_inline
def _heap_push(keys, ties, vals, n, key, tie, val):
    """Push (key, tie) -> val onto a binary min-heap of size n; return the new size."""
    keys[n], ties[n], vals[n] = key, tie, val
    i = n
    while i > 0:
        parent = (i - 1) // 2
        if not _heap_less(keys, ties, i, parent):
            break
        _heap_swap(keys, ties, vals, i, parent)
        i = parent
    return n + 1


@jit_inline
def _heap_pop(keys, ties, vals, n):
    """Remove the smallest (key, tie) of a heap of size n; return (key, tie, val, new size)."""
    key, tie, val = keys[0], ties[0], vals[0]
    n -= 1
    _heap_swap(keys, ties, vals, 0, n)
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _heap_less(keys, ties, child + 1, child):
            child += 1
        if not _heap_less(keys, ties, child, i):
            break
        _heap_swap(keys, ties, vals, i, child)
        i = child
    return key, tie, val, n


# ----------------------------------------------------------------------------------------------- shared steps
#
# The helpers below are inlined into both kernels. Those that take arrays are straight-line code: Numba's
# reference-count pruning then removes the incref/decref pairs that passing an array would cost in the hot loop.

@jit_inline
def _stage_cost(latency_s, energy_j, overhead_s, idle_w, d, k, m, g, scale, wake, extra_s):
    """Duration (s) and device energy (J) of stage k run on a batch of m on device d with draw g.

    `wake` is the wake-up factor of the stage in its busy period (`_warm_step`; 1.0 when warm) and `extra_s` the
    dispatch overhead, paid by the first stage of a batch only (0.0 for the others); the caller multiplies both by
    the host's speed factor (1.0 without a speed process: unchanged to the bit).
    """
    dur = (latency_s[d, k, m - 1, g] * scale + overhead_s[d, k]) * wake + extra_s
    e = (energy_j[d, k, m - 1] * scale + idle_w[d] * overhead_s[d, k]) * wake + idle_w[d] * extra_s
    return dur, e


@jit_inline
def _warm_step(wake_f, first, power, decay):
    """The wake-up factor of the next stage of a busy period that began with factor `wake_f`, and the new
    (first, power): the first stage takes `wake_f`, stage j after it ``1 + (wake_f - 1) * decay**j`` (the power
    kept as a running product, so both engines compute it with the same multiplications)."""
    if first:
        return wake_f, False, decay
    return 1.0 + (wake_f - 1.0) * power, False, power * decay


@jit_inline
def _speed(speed, speed_step_s, d, t):
    """The host speed factor of device d for a stage starting at time t (`simulator.speed`)."""
    return speed[d, int(t / speed_step_s[d]) % speed.shape[1]]


def _cold_scale(member, member_end, d, k, t, scale):
    """The cost scale of stage k starting at t on device d, times its member-idle factor: `member` is the devices'
    ``(idle_s [device, points], factor [device, points])`` table, its member last ended at ``member_end[d, k]``;
    without a table (None) `scale` itself, chosen at compile time."""
    return scale


@overload(_cold_scale)
def _cold_scale_impl(member, member_end, d, k, t, scale):
    if isinstance(member, types.NoneType):
        return lambda member, member_end, d, k, t, scale: scale
    return lambda member, member_end, d, k, t, scale: scale * wakeup_factor(t - member_end[d, k], member[0][d],
                                                                            member[1][d])


def _member_ended(member, member_end, d, k, t):
    """Record that stage k's member ended at t on device d (nothing without a member-idle table)."""


@overload(_member_ended)
def _member_ended_impl(member, member_end, d, k, t):
    if isinstance(member, types.NoneType):
        return lambda member, member_end, d, k, t: None

    def record(member, member_end, d, k, t):
        member_end[d, k] = t
    return record


@jit_inline
def released_during(arrival_s, t0, dur, cost):
    """Open loop: the extra time (s) of a stage run on a busy device from `t0` lasting `dur`, at `cost` per request
    that arrives in ``(t0, t0 + dur + extra]``, the extra time included: the fixed point, reached in at most one step
    per such arrival (`arrival_s` sorted; requests arriving at `t0` came before the dispatch)."""
    before = np.searchsorted(arrival_s, t0, side="right")
    n = 0
    while True:
        during = np.searchsorted(arrival_s, t0 + dur + n * cost, side="right") - before
        if during == n:
            return n * cost
        n = during


def _with_releases(release, arrival_s, idle_w, d, t, dur, e, sp):
    """Duration and energy of a stage run from t lasting `dur` on device d (energy `e`) with the release cost of the
    requests arriving while it runs (`released_during`, at the host's speed `sp`, at idle power): `release` is the
    devices' costs (s) [device]; None (a closed loop, or no device has one) leaves them as they are, chosen at
    compile time."""
    return dur, e


@overload(_with_releases)
def _with_releases_impl(release, arrival_s, idle_w, d, t, dur, e, sp):
    if isinstance(release, types.NoneType):
        return lambda release, arrival_s, idle_w, d, t, dur, e, sp: (dur, e)

    def add(release, arrival_s, idle_w, d, t, dur, e, sp):
        x = released_during(arrival_s, t, dur, release[d] * sp)
        return dur + x, e + idle_w[d] * x
    return add


@jit
def wakeup_factor(idle_s, points_s, factors):
    """Factor of the first stage after `idle_s` seconds idle: piecewise linear through (0, 1) and
    (`points_s`, `factors`), constant beyond the last point."""
    x0, f0 = 0.0, 1.0
    for i in range(points_s.shape[0]):
        if idle_s <= points_s[i]:
            return f0 + (idle_s - x0) * (factors[i] - f0) / (points_s[i] - x0)
        x0, f0 = points_s[i], factors[i]
    return f0


#: The fields of `per_sample_table`'s last axis.
SIGNAL, SCALE, PREDICTION, CORRECT = range(4)


def per_sample_table(inp: SimulationInputs) -> np.ndarray:
    """What the kernels read of each sample after each stage, as one float64 array ``[sample, stage, field]``
    (fields: the stage's signal, its member's cost scale, the prediction and whether it is correct, both exact as
    floats), 64-byte aligned: a request's first two stages lie in one cache line. Its samples are drawn at random
    from the cache, so these reads miss the caches; as four ``[stage, sample]`` arrays they took a line each per
    stage."""
    stages = inp.stages
    fields_ = (stages.signal, inp.cost_scale, stages.prediction, stages.correct)
    shape = stages.signal.shape[::-1] + (len(fields_),)
    memory = np.empty(int(np.prod(shape)) + 8)              # rows of 32 bytes a stage, 64-byte aligned
    start = (-memory.ctypes.data % 64) // 8
    table = memory[start:start + int(np.prod(shape))].reshape(shape)
    for i, values in enumerate(fields_):
        table[:, :, i] = values.T
    return table


@jit_inline
def _prediction(table, s, k):
    """The prediction after stage k of sample s (`per_sample_table`), as the cache's int32."""
    return np.int32(table[s, k, PREDICTION])


@jit_inline
def _correct(table, s, k):
    """Whether the prediction after stage k of sample s is correct (`per_sample_table`)."""
    return table[s, k, CORRECT] != 0.0


@jit_inline
def _quick_stop(table, thresholds, max_stages, level, k, s):
    """The rules that need no request state, checked first: last stage, the level's maximum number of stages,
    the level's threshold. A subset of `policies.stop_rule`: whenever it says stop, so would `stop_rule`."""
    n_stages = table.shape[1]
    # bitwise `|`, not `or`: straight-line code, so that passing the arrays costs no reference counting
    return (k == n_stages - 1) | (k + 1 >= max_stages[level]) | (table[s, k, SIGNAL] >= thresholds[level, k])


@jit_inline
def _state(table, est_latency_s, est_stage_energy_j, est_energy_j, d, k, m, s, elapsed_s, deadline_s, energy_j,
           budget_j, qlen, tokens_j):
    """The `RequestState` after stage k (< n_stages - 1) of a request served with sample s (`per_sample_table`)."""
    return RequestState(k, table.shape[1], table[s, k, SIGNAL], _prediction(table, s, k), _correct(table, s, k),
                        elapsed_s, deadline_s, est_latency_s[d, k + 1, m - 1], energy_j,
                        est_energy_j[d, k + 1, m - 1], budget_j, qlen, m, tokens_j, est_stage_energy_j[d, k + 1, m - 1])


@jit_inline
def _bucket(tokens, tok_last, d, t, capacity, cap_w, drain_j):
    """Power-cap bucket of device d at time t, after an interval since its last update in which it drew `drain_j` at
    a constant power: in and out at once, so the bucket overflows at capacity only by what the interval's net inflow
    (refill less drain) brings."""
    tokens[d] = min(capacity, tokens[d] + cap_w * (t - tok_last[d]) - drain_j)
    tok_last[d] = t


@jit_inline
def _log_stage(log_start, log_end, log_stage, log_size, log_energy, log_device, i, t0, t1, k, m, e, d):
    """Write batch-stage i of the log."""
    log_start[i] = t0
    log_end[i] = t1
    log_stage[i] = k
    log_size[i] = m
    log_energy[i] = e
    log_device[i] = d


@jit_inline
def _finish(out_finish, out_stages, out_pred, out_correct, out_energy, table, r, t, k, s, energy_r):
    """Record that request r, served with sample s, stopped after stage k at time t."""
    out_finish[r] = t
    out_stages[r] = k + 1
    out_pred[r] = _prediction(table, s, k)
    out_correct[r] = _correct(table, s, k)
    out_energy[r] = energy_r


# ----------------------------------------------------------------------------------------------- kernels

@jit
def _kernel(custom, custom_params, params, table, device, work, records, log, variant):
    """Choose the kernel: the single-server one for 1 device, batch 1, FIFO, open loop; else the general one."""
    _, clients, _, _, _, _, max_batch, edf, _, _ = work
    if device[0].shape[0] == 1 and max_batch == 1 and not edf and clients == 0:
        return _single_server(custom, custom_params, params, table, device, work, records, log, variant)
    return _general(custom, custom_params, params, table, device, work, records, log, variant)


@jit_inline
def _features(custom, params, wake_idle_s, speed_step_s, cap_w, variant):
    """The run-time features a kernel tests in its loop: (stateful policy, wake-up, speed process, power cap, load
    levels, batch-stage log), each constant False where `variant` (`_variant`) compiles it out."""
    dynamic, logging = variant
    _, _, level_queue_len, deadline_aware, energy_aware, power_capped, oracle = params
    on = _present(dynamic)
    stateful = on and (deadline_aware or energy_aware or power_capped or oracle or _present(custom))
    waking = on and np.isfinite(wake_idle_s).any()      # some device slows down after idle
    noisy = on and np.isfinite(speed_step_s).any()      # some device has a speed process
    capped = on and cap_w < np.inf
    levelled = on and level_queue_len.shape[0] > 1
    return stateful, waking, noisy, capped, levelled, _present(logging)


@jit
def _single_server(custom, custom_params, params, table, device, work, records, log, variant):
    """One device, batch 1, FIFO, open loop: a Lindley recursion with the stage loop inside."""
    (latency_s, energy_j, est_latency_s, est_stage_energy_j, est_energy_j, overhead_s, idle_w, dispatch_s,
     wake_idle_s, wake_factor, wake_decay, member, release, speed, speed_step_s) = device
    arrival_s, _, sample, draw, deadline_s, budget_j, _, _, cap_w, window_s = work
    out_start, out_finish, out_stages, out_pred, out_correct, out_energy, out_device, out_qlen = records
    log_start, log_end, log_stage, log_size, log_energy, log_device, dev_busy, dev_energy = log
    thresholds, max_stages, level_queue_len, deadline_aware, energy_aware, power_capped, oracle = params
    stateful, waking, noisy, capped, levelled, logging = _features(custom, params, wake_idle_s, speed_step_s,
                                                                   cap_w, variant)
    n, n_stages, log_cap = sample.shape[0], table.shape[1], log_start.shape[0]
    member_end = np.zeros((1, n_stages))        # when each stage's member last ended (0: as if at time 0)
    deadline_step, budget_step = int(deadline_s.shape[0] > 1), int(budget_j.shape[0] > 1)
    capacity = cap_w * window_s
    tokens = np.full(1, capacity)
    tok_last = np.zeros(1)
    free = 0.0
    wake_f, first, power = 1.0, True, 1.0      # the busy period's wake-up: factor, at its first stage, decay**j
    n_arrived = 0
    n_log = 0
    busy_total = dev_busy[0]        # accumulated in registers, the same additions in the same order
    energy_total = dev_energy[0]
    for r in range(n):
        t = max(arrival_s[r], free)
        # count the arrivals up to t (sorted, followed by +inf sentinels): the next four are compared at once,
        # without branches; the loop runs only when all four had arrived
        while True:
            ahead = ((arrival_s[n_arrived] <= t) + (arrival_s[n_arrived + 1] <= t)
                     + (arrival_s[n_arrived + 2] <= t) + (arrival_s[n_arrived + 3] <= t))
            n_arrived += ahead
            if ahead < 4:
                break
        qlen = n_arrived - r - 1
        level = load_level(qlen, level_queue_len) if levelled else 0
        if capped:
            _bucket(tokens, tok_last, 0, t, capacity, cap_w, idle_w[0] * (t - free))
        out_start[r] = t
        out_device[r] = 0
        out_qlen[r] = qlen
        s = sample[r]
        energy_r = 0.0
        busy = 0.0
        spent = 0.0
        if waking and t > free:
            wake_f, first = wakeup_factor(t - free, wake_idle_s[0], wake_factor[0]), True
        extra_s = dispatch_s[0, int(t > free)]        # [device, queued / idle]
        for k in range(n_stages):
            sp = _speed(speed, speed_step_s, 0, t) if noisy else 1.0
            wake = 1.0
            if waking:
                wake, first, power = _warm_step(wake_f, first, power, wake_decay[0])
            scale = _cold_scale(member, member_end, 0, k, t, table[s, k, SCALE])
            dur, e = _stage_cost(latency_s, energy_j, overhead_s, idle_w, 0, k, 1, draw[r, k], scale, wake * sp,
                                 extra_s * sp)
            dur, e = _with_releases(release, arrival_s, idle_w, 0, t, dur, e, sp)
            extra_s = 0.0
            t0 = t
            t = t + dur
            _member_ended(member, member_end, 0, k, t)
            busy += dur
            spent += e
            if capped:
                _bucket(tokens, tok_last, 0, t, capacity, cap_w, e)
            if logging and n_log < log_cap:
                _log_stage(log_start, log_end, log_stage, log_size, log_energy, log_device, n_log, t0, t, k, 1, e, 0)
                n_log += 1
            energy_r = energy_r + e / 1
            stop = _quick_stop(table, thresholds, max_stages, level, k, s)
            if not stop and stateful:
                state = _state(table, est_latency_s, est_stage_energy_j, est_energy_j, 0, k, 1, s,
                               t - arrival_s[r], deadline_s[r * deadline_step], energy_r, budget_j[r * budget_step],
                               qlen, tokens[0])
                stop = stop_rule(state, thresholds[level, k], max_stages[level], deadline_aware, energy_aware,
                                 power_capped, oracle) or _custom_stop(custom, state, custom_params)
            if stop:
                _finish(out_finish, out_stages, out_pred, out_correct, out_energy, table, r, t, k, s, energy_r)
                break
        busy_total += busy
        energy_total += spent
        free = t
    dev_busy[0] = busy_total
    dev_energy[0] = energy_total
    return n_log


@jit
def _general(custom, custom_params, params, table, device, work, records, log, variant):
    """Any number of devices sharing one queue, greedy batching, FIFO or EDF, open or closed loop."""
    (latency_s, energy_j, est_latency_s, est_stage_energy_j, est_energy_j, overhead_s, idle_w, dispatch_s,
     wake_idle_s, wake_factor, wake_decay, member, release, speed, speed_step_s) = device
    arrival_s, clients, sample, draw, deadline_s, budget_j, max_batch, edf, cap_w, window_s = work
    out_start, out_finish, out_stages, out_pred, out_correct, out_energy, out_device, out_qlen = records
    log_start, log_end, log_stage, log_size, log_energy, log_device, dev_busy, dev_energy = log
    thresholds, max_stages, level_queue_len, deadline_aware, energy_aware, power_capped, oracle = params
    stateful, waking, noisy, capped, levelled, logging = _features(custom, params, wake_idle_s, speed_step_s,
                                                                   cap_w, variant)
    n, n_stages, n_dev, log_cap = sample.shape[0], table.shape[1], latency_s.shape[0], log_start.shape[0]
    member_end = np.zeros((n_dev, n_stages))    # see _single_server
    deadline_step, budget_step = int(deadline_s.shape[0] > 1), int(budget_j.shape[0] > 1)
    capacity = cap_w * window_s
    free = np.zeros(n_dev)
    wake_f, first, power = np.ones(n_dev), np.ones(n_dev, dtype=np.bool_), np.ones(n_dev)    # see _single_server
    tokens = np.full(n_dev, capacity)
    tok_last = np.zeros(n_dev)
    batch = np.empty(max_batch, dtype=np.int64)
    acc_energy = np.empty(max_batch)    # energy attributed so far to each request of the running batch

    # closed loop: future arrivals keyed (time, tie = id of the request whose finish releases them)
    closed = clients > 0
    pend_cap = n + clients if closed else 1
    pend_key, pend_tie, pend_val = np.empty(pend_cap), np.empty(pend_cap, np.int64), np.empty(pend_cap, np.int64)
    n_pend = 0
    for c in range(clients):
        n_pend = _heap_push(pend_key, pend_tie, pend_val, n_pend, 0.0, c - clients, 0)
    # EDF queue keyed (absolute deadline, id)
    q_cap = n if edf else 1
    q_key, q_tie, q_val = np.empty(q_cap), np.empty(q_cap, np.int64), np.empty(q_cap, np.int64)
    n_q = 0

    n_adm = 0        # requests that have arrived (ids 0 .. n_adm-1, in arrival order)
    head = 0         # FIFO: next id to dispatch
    n_disp = 0       # requests dispatched
    n_log = 0
    clock = -np.inf
    while n_disp < n:
        t = free[0]
        for j in range(1, n_dev):
            t = min(t, free[j])
        t = max(t, clock)
        for phase in range(2):
            while n_adm < n:        # admit every arrival at or before t
                if closed:
                    if n_pend == 0 or pend_key[0] > t:
                        break
                    arrival_s[n_adm], _, _, n_pend = _heap_pop(pend_key, pend_tie, pend_val, n_pend)
                elif arrival_s[n_adm] > t:
                    break
                if edf:
                    n_q = _heap_push(q_key, q_tie, q_val, n_q, arrival_s[n_adm] + deadline_s[n_adm * deadline_step],
                                     n_adm, n_adm)
                n_adm += 1
            waiting = n_q if edf else n_adm - head
            if waiting > 0 or phase == 1:
                break
            t = pend_key[0] if closed else arrival_s[n_adm]     # idle until the next arrival
        clock = t
        d = 0
        while free[d] > t:
            d += 1
        size = min(max_batch, waiting)
        for i in range(size):
            if edf:
                _, _, batch[i], n_q = _heap_pop(q_key, q_tie, q_val, n_q)
            else:
                batch[i] = head + i
        head += 0 if edf else size
        n_disp += size
        qlen = waiting - size
        level = load_level(qlen, level_queue_len) if levelled else 0
        if capped:
            _bucket(tokens, tok_last, d, t, capacity, cap_w, idle_w[d] * (t - free[d]))
        for i in range(size):
            out_start[batch[i]] = t
            out_device[batch[i]] = d
            out_qlen[batch[i]] = qlen
            acc_energy[i] = 0.0

        lead = batch[0]
        m = size
        busy = 0.0
        spent = 0.0
        if waking and t > free[d]:
            wake_f[d], first[d] = wakeup_factor(t - free[d], wake_idle_s[d], wake_factor[d]), True
        extra_s = dispatch_s[d, int(t > free[d])]      # [device, queued / idle]
        for k in range(n_stages):
            scale = table[sample[batch[0]], k, SCALE]
            for i in range(1, m):
                scale = max(scale, table[sample[batch[i]], k, SCALE])
            scale = _cold_scale(member, member_end, d, k, t, scale)
            sp = _speed(speed, speed_step_s, d, t) if noisy else 1.0
            wake = 1.0
            if waking:
                wake, first[d], power[d] = _warm_step(wake_f[d], first[d], power[d], wake_decay[d])
            dur, e = _stage_cost(latency_s, energy_j, overhead_s, idle_w, d, k, m, draw[lead, k], scale, wake * sp,
                                 extra_s * sp)
            dur, e = _with_releases(release, arrival_s, idle_w, d, t, dur, e, sp)
            extra_s = 0.0
            t0 = t
            t = t + dur
            _member_ended(member, member_end, d, k, t)
            busy += dur
            spent += e
            if capped:
                _bucket(tokens, tok_last, d, t, capacity, cap_w, e)
            if logging and n_log < log_cap:
                _log_stage(log_start, log_end, log_stage, log_size, log_energy, log_device, n_log, t0, t, k, m, e, d)
                n_log += 1
            share = e / m
            kept = 0
            for i in range(m):
                r = batch[i]
                s = sample[r]
                energy_r = acc_energy[i] + share
                stop = _quick_stop(table, thresholds, max_stages, level, k, s)
                if not stop and stateful:
                    state = _state(table, est_latency_s, est_stage_energy_j, est_energy_j,
                                   d, k, m, s, t - arrival_s[r], deadline_s[r * deadline_step], energy_r,
                                   budget_j[r * budget_step], qlen, tokens[d])
                    stop = stop_rule(state, thresholds[level, k], max_stages[level], deadline_aware, energy_aware,
                                     power_capped, oracle) or _custom_stop(custom, state, custom_params)
                if stop:
                    _finish(out_finish, out_stages, out_pred, out_correct, out_energy, table, r, t, k, s, energy_r)
                    if closed:
                        n_pend = _heap_push(pend_key, pend_tie, pend_val, n_pend, t, r, 0)
                else:
                    batch[kept] = r
                    acc_energy[kept] = energy_r
                    kept += 1
            m = kept
            if m == 0:
                break
        dev_busy[d] += busy
        dev_energy[d] += spent
        free[d] = t
    return n_log
