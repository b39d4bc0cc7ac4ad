"""Each kernel's time inside a real forward pass of a built-in model or a user's (needs PyTorch; imported only by
the command that measures, ``flexsim costmodel kernel-times``).

The cost model is fitted on whole calls, so a call it misses does not say which of its kernels it got wrong. This
module times every kernel of the layer table (`simulator.costmodel.layers`) inside a real forward pass: the model
runs under the same ``TorchDispatchMode`` hook that traced the table, which times each ATen kernel it dispatches
(views and allocations skipped, as in the trace): wall time on the CPU; on a GPU, CUDA events recorded around the
kernel, with the pass queued behind a spin kernel (`torch.cuda._sleep`) long enough for the host to issue all of it,
so that the kernels run back to back, as in a CUDA graph, and each event pair spans the kernel's time on the device,
not the host's time issuing it. The kernels are checked against the committed table (their count and kinds; a
user's model is traced first, `simulator.costmodel.trace.trace_model`), so that kernel ``i`` of a measurement is
kernel ``i`` of the table. Beside them, each call is timed whole without the
hook, as the profiler times a point (inference mode, output copied to the host): what the call costs beyond its
kernels (Python, module calls; on a GPU the host's launches and the copy) is the difference.
`simulator.costmodel.kernelcheck` sets these times against the cost model's kernels.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from simulator.costmodel.kernelcheck import SCHEMA
from simulator.costmodel.layers import KINDS, load_table
from simulator.costmodel.points import POINT_QUANTILE
from simulator.costmodel.trace import _ALLOCATIONS, _is_view, _kind
from simulator.errors import FlexsimError, require

#: The statistic of a kernel's (and a call's) timed passes that the file's ``kernel_ms`` / ``call_ms`` hold: the
#: profiles' points' quantile (the host's slow phases spoil the upper ones).
QUANTILE = POINT_QUANTILE


class _KernelClock(TorchDispatchMode):
    """Times every kernel dispatched in its block: ``(name, kind index, start, end)`` per kernel, perf_counter
    seconds on the CPU, CUDA events on a GPU (read after a synchronisation: `elapsed_ms`)."""

    def __init__(self, cuda: bool):
        super().__init__()
        self.cuda = cuda
        self.rows = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if _is_view(func) or name in _ALLOCATIONS:
            return func(*args, **kwargs)
        start = self._now()
        out = func(*args, **kwargs)
        self.rows.append((name, KINDS.index(_kind(name, args)), start, self._now()))
        return out

    def _now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(self) -> np.ndarray:
        """Each timed kernel's duration (ms); on a GPU, call after `torch.cuda.synchronize`."""
        if self.cuda:
            return np.array([s.elapsed_time(e) for _, _, s, e in self.rows])
        return np.array([(e - s) * 1e3 for _, _, s, e in self.rows])


#: A GPU pass is queued behind a spin kernel this many times as long as the host took to issue a pass during the
#: warm-up (median; `_targets`), counted at `SPIN_CLOCK_HZ` (above a data-center GPU's clock: a slower one spins
#: longer), and at most `MAX_SPIN_S`. The spin is fixed before the timed passes: a pass that outran a full launch
#: queue would otherwise lengthen the next spin, and so on.
SPIN_MARGIN = 3.0
SPIN_CLOCK_HZ = 2.5e9
MAX_SPIN_S = 1.0


def _timed_pass(forward, cuda: bool, spin_s: float = 0.0) -> tuple[list[str], list[int], np.ndarray, float]:
    """One forward pass (`forward()`: `simulator.profiler.targets.Target.forward`) under the hook: the kernels'
    names, kinds and times (ms), and the host's time issuing them (s). On a GPU the pass is first queued behind a
    spin of `spin_s` seconds (none where 0)."""
    if cuda and spin_s > 0:
        torch.cuda._sleep(int(min(spin_s, MAX_SPIN_S) * SPIN_CLOCK_HZ))
    clock = _KernelClock(cuda)
    start = time.perf_counter()
    with clock:
        forward()
    host_s = time.perf_counter() - start
    if cuda:
        torch.cuda.synchronize()
    return [r[0] for r in clock.rows], [r[1] for r in clock.rows], clock.elapsed_ms(), host_s


def _call_ms(run, cuda: bool) -> float:
    """Wall time (ms) of one call without the hook, as the profiler times one: `run()`
    (`simulator.profiler.targets.Target.run`: the output copied to the host, which waits for the device), in
    inference mode."""
    start = time.perf_counter()
    with torch.inference_mode():
        run()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def _check_kernels(model: str, batch: int, names: list[str], kinds: list[int], table,
                   hint: str | None = None) -> None:
    """FlexsimError unless the timed kernels are the table's: as many, of the same kinds in the same order (names
    may differ by device: batch norm is ``native_batch_norm`` on the CPU, ``cudnn_batch_norm`` with cuDNN). `hint`:
    what to do about a mismatch (default: trace the built-in model again)."""
    hint = hint or f"trace it again: flexsim costmodel trace --models {model}"
    require(len(names) == table.n_kernels, f"kernel times: {model} at batch {batch} ran {len(names)} kernels, its "
            f"layer table has {table.n_kernels} ({hint})")
    i = next((i for i, (k, t) in enumerate(zip(kinds, table.kind)) if k != t), None)
    if i is not None:
        raise FlexsimError(f"kernel times: {model} at batch {batch}: kernel {i} ({names[i]}) is a {KINDS[kinds[i]]} "
                           f"kernel, the layer table's ({table.op[i]}) a {KINDS[table.kind[i]]} one ({hint})")


@dataclass
class _Target:
    """One model x dtype x batch size, prepared (`call`: the profiler's `Target`), and the times of its passes so
    far."""

    model: str
    dtype: str
    batch: int
    call: object
    ops: list
    spin_s: float = 0.0  # on a GPU, the spin each hooked pass is queued behind (`_timed_pass`)
    inputs: dict = field(default_factory=dict)      # a user's model's input facts (`_input_facts`)
    kernel_ms: list = field(default_factory=list)   # one array of kernel times per timed pass
    call_ms: list = field(default_factory=list)

    def time_passes(self, passes: int, cuda: bool) -> None:
        """`passes` hooked passes and as many whole calls, their times added."""
        self.kernel_ms += [_timed_pass(self.call.forward, cuda, self.spin_s)[2] for _ in range(passes)]
        self.call_ms += [_call_ms(self.call.run, cuda) for _ in range(passes)]


def _table_of(model) -> tuple[object, str | None]:
    """The layer table the kernels of `model` are matched to, and the hint for a mismatch: a built-in model's
    committed table; a user's model (`simulator.models.user.UserModel`) traced here, just before."""
    from simulator.costmodel.trace import trace_model
    from simulator.models.user import UserModel

    if not isinstance(model, UserModel):
        return load_table(model), None
    return trace_model(model), ("its kernels differ from those its trace ran just before at batch 1 and 2: a "
                                "forward pass whose kernels change with the batch size or the input is not one the "
                                "cost model can match")


def _targets(model, table, hint: str | None, batch_sizes, dtype: str, device: str, warmup: int) -> list[_Target]:
    """`model` (a built-in name, random weights; or a `simulator.models.user.UserModel`, as its code builds it) in
    `dtype` on `device`, at each batch size: prepared as the profiler prepares a call
    (`simulator.profiler.targets.prepare`), warmed up (`warmup` calls with and without the hook) and its kernels
    checked against its layer `table` (`hint`: `_table_of`'s)."""
    from simulator.models.registry import build_model, input_shape, input_tokens, model_name
    from simulator.profiler.targets import prepare

    cuda, module, out, name = device != "cpu", build_model(model)[0], [], model_name(model)
    for batch in batch_sizes:
        call = prepare(torch, module, input_shape(model), batch, dtype, device, "eager", f"kernel times: {name}",
                       input_tokens(model))
        host_s = []
        with torch.no_grad():
            for _ in range(warmup):          # without a spin: the host's own time issuing a pass
                _call_ms(call.run, cuda)
                names, kinds, _, issued_s = _timed_pass(call.forward, cuda)
                host_s.append(issued_s)
        _check_kernels(name, batch, names, kinds, table.at(batch), hint)
        out.append(_Target(name, dtype, int(batch), call, names, SPIN_MARGIN * float(np.median(host_s)),
                           _input_facts(model)))
    return out


def _input_facts(model) -> dict:
    """What a user's model was measured on (its per-sample input shape, and token vocabulary where it takes token
    ids), recorded in its entries so that `kernelcheck` can check the table it is given was traced on the same; {}
    for a built-in model (its committed table is its own)."""
    from simulator.models.user import UserModel

    if not isinstance(model, UserModel):
        return {}
    return {"input_shape": list(model.input_shape),
            **({} if model.input_tokens is None else {"input_tokens": model.input_tokens})}


def _entry(t: _Target) -> dict:
    kernel, call = np.array(t.kernel_ms), np.array(t.call_ms)
    return {"model": t.model, **t.inputs, "dtype": t.dtype, "batch": t.batch, "passes": len(call), "ops": t.ops,
            "kernel_ms": _rounded(np.quantile(kernel, QUANTILE, axis=0)),
            "kernel_ms_p50": _rounded(np.median(kernel, axis=0)),
            "call_ms": _rounded([np.quantile(call, QUANTILE)])[0], "call_ms_p50": _rounded([np.median(call)])[0]}


def _rounded(values) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def measure(models, batch_sizes, dtypes, device: str, rounds: int, passes: int, threads: int | None = None,
            allocator: str = "steady", warmup: int = 3, progress=None) -> dict:
    """The kernel-times file's content: every model (built-in names and `simulator.models.user.UserModel`s) x dtype x
    batch size, `rounds` rounds over all of them (so that
    a slow phase of the host spoils a few passes of each rather than every pass of one), each round `passes` timed
    passes with the hook and as many whole calls without it; per kernel and per call the `QUANTILE` and median of
    the passes (ms); the device and how it was measured. `threads`: PyTorch's CPU threads (None: its default);
    `allocator`: `simulator.profiler.allocator.set_allocator`'s setting, as the profiler's."""
    from datetime import datetime, timezone

    from simulator.profiler.allocator import allocator_facts, set_allocator
    from simulator.profiler.environment import device_facts, software_versions
    from simulator.profiler.targets import check_device

    check_device(torch, device)
    for name, value in (("rounds", rounds), ("passes", passes)):
        require(value >= 1, f"invalid --{name} = {value}: must be an integer >= 1")
    require(warmup >= 1, f"kernel times: warmup = {warmup}: must be an integer >= 1 (a warm-up pass finds the kernels)")
    if threads is not None:
        require(threads >= 1, f"invalid --threads = {threads}: must be an integer >= 1")
        torch.set_num_threads(threads)
    set_allocator(allocator)
    start, cuda = time.perf_counter(), device != "cpu"
    with torch.cuda.device(device) if cuda else contextlib.nullcontext():   # events and syncs on that GPU
        tables = [_table_of(m) for m in models]          # a user's model traced once, whatever its dtypes
        targets = [t for m, (table, hint) in zip(models, tables) for d in dtypes
                   for t in _targets(m, table, hint, batch_sizes, d, device, warmup)]
        with torch.no_grad():
            for r in range(rounds):
                for t in targets:
                    t.time_passes(passes, cuda)
                if progress:
                    progress(f"round {r + 1} of {rounds} done ({time.perf_counter() - start:.0f} s)")
    entries = [_entry(t) for t in targets]
    if progress:
        for e in entries:
            progress(f"{e['model']} {e['dtype']} batch {e['batch']}: call {e['call_ms']:.3f} ms, kernels "
                     f"{sum(e['kernel_ms']):.3f} ms ({len(e['ops'])})")
    return {"schema": SCHEMA, "device": device_facts(torch, device, None, torch.get_num_threads()),
            "provenance": {"built_by": "flexsim costmodel kernel-times (simulator.costmodel.kerneltimes)",
                           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                           "software": software_versions(torch), "rounds": rounds, "passes_per_round": passes,
                           "allocator": allocator_facts(),
                           "statistic": f"quantile {QUANTILE} of the passes (kernel_ms, call_ms) and their median "
                           "(_p50)", "measure_s": round(time.perf_counter() - start, 1),
                           "method": "each ATen kernel of a forward pass (no_grad) timed by a TorchDispatchMode "
                           "hook: wall time on the CPU; on a GPU CUDA events around it, the pass queued behind a "
                           "spin kernel so that the kernels run back to back; call_ms: whole calls without the hook "
                           "(inference mode, output copied to the host)"},
            "entries": entries}
