"""The decision the worker takes on the host after each stage, with the simulator's own code.

The combined probability vector, the prediction and the confidence signal come from
`simulator.decision.decide_after_stage` (the same `softmax`, `combine` and `confidence` that
`simulator.signals.stage_signals` applies to a whole cache), and the stop rule is the compiled policy
(`CompiledPolicy.decide`, the engines' `should_stop`) on a `RequestState` built as the engines build it. So, on the
same logits, a real run and a simulation take the same decisions; only the timing fields differ (real clock
instead of simulated time).

Energy in the state is the profile's estimate (attributed as the engines attribute it: call energy times the cost
scale, idle power over the decision overhead and, on the first stage, over the dispatch overhead; the engines'
wake-up and speed factors, which a real run does not know in advance, are left out): per-call energy cannot be
measured on a real device (an NVML counter advances every ~100 ms; a CPU without RAPL has none).
"""

from __future__ import annotations

import numpy as np

from simulator.decision import decide_after_stage
from simulator.inputs import SimulationInputs
from simulator.policies import RequestState


def _per_request(values: np.ndarray, r: int) -> float:
    return float(values[r] if values.shape[0] > 1 else values[0])


class HostDecision:
    """Signal, prediction and stop decision after a stage of a request, from the logits of its stages so far."""

    def __init__(self, inputs: SimulationInputs, combiner: str, signal: str, labels: np.ndarray):
        tables = inputs.devices[0]
        self.policy, self.n_stages = inputs.policy, inputs.n_stages
        self.combiner, self.signal, self.labels = combiner, signal, labels
        self.deadline_s, self.energy_budget_j = inputs.deadline_s, inputs.energy_budget_j
        self.cost_scale = inputs.cost_scale
        pad = np.array([np.inf])
        self.est_latency_s = np.concatenate([tables.est_latency_s[:, 0], pad])
        self.est_energy_j = np.concatenate([tables.est_energy_j[:, 0], pad])
        self.est_stage_energy_j = np.concatenate([tables.est_stage_energy_j[:, 0], pad])
        self.stage_energy_j = tables.energy_j[:, 0]
        self.overhead_energy_j = tables.idle_power_w * tables.overhead_s
        self.dispatch_energy_j = tables.idle_power_w * tables.dispatch_s      # [queued, idle]

    def combined(self, stage_logits: np.ndarray) -> tuple[float, int]:
        """(signal, prediction) of the combined vector after the stages whose logits are `stage_logits`."""
        _, prediction, value = decide_after_stage(stage_logits, self.combiner, self.signal, np.inf)
        return value, prediction

    def stage_energy(self, k: int, s: int) -> float:
        """Estimated energy (J) of stage `k` on sample `s` (NaN where the profile has none)."""
        return float(self.stage_energy_j[k] * self.cost_scale[k, s] + self.overhead_energy_j[k])

    def dispatch_energy(self, idle: bool) -> float:
        """Estimated energy (J) of the dispatch overhead a request's first stage pays, taken off the queue or (`idle`)
        dispatched to an idle worker: idle power over the profile's dispatch overhead, as the engines charge it."""
        return float(self.dispatch_energy_j[int(idle)])

    def stops(self, r: int, s: int, k: int, value: float, prediction: int, elapsed_s: float, queue_len: int,
              energy_j: float) -> bool:
        """Whether request `r` (sample `s`) stops after stage `k` (always after the last stage)."""
        if k + 1 >= self.n_stages:
            return True
        state = RequestState(k, self.n_stages, value, prediction, prediction == self.labels[s], elapsed_s,
                             _per_request(self.deadline_s, r), self.est_latency_s[k + 1], energy_j,
                             self.est_energy_j[k + 1], _per_request(self.energy_budget_j, r), queue_len, 1, np.inf,
                             self.est_stage_energy_j[k + 1])
        return bool(self.policy.decide(state))
