"""What one measured call is: a forward pass of a model on a prepared input, and the copy of its output to the
host (what a flexible ensemble waits for before it decides). Eager PyTorch on the CPU or a CUDA GPU, or a CUDA graph
replay. Needs PyTorch (imported by the caller and passed in)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from simulator.errors import FlexsimError, exception_line, is_model_failure, require

DTYPES = ("fp32", "fp16", "bf16")
MODES = ("eager", "graph")


def torch_dtype(torch, dtype: str):
    require(dtype in DTYPES, f"invalid dtype {dtype!r}: must be one of {', '.join(DTYPES)}")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def check_device(torch, device: str) -> str:
    """The device string if PyTorch can use it here, else FlexsimError."""
    require(device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
            f"invalid device {device!r}: must be cpu, cuda or cuda:<index>")
    if device != "cpu":
        require(torch.cuda.is_available(), f"device = {device!r}: no CUDA device is available here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
        index = int(device.split(":")[1]) if ":" in device else 0
        require(index < torch.cuda.device_count(),
                f"device = {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device


def check_mode(mode: str, device: str) -> str:
    require(mode in MODES, f"invalid mode {mode!r}: must be one of {', '.join(MODES)}")
    require(mode == "eager" or device != "cpu", f"mode = {mode!r} needs a CUDA device (device = {device!r})")
    return mode


@dataclass
class Target:
    """A prepared call: ``run()`` does one forward pass and returns the output copied to the host;
    ``forward()`` only launches the forward pass (its output stays on the device)."""

    run: object
    forward: object
    module: object
    batch: int
    cuda: bool


def prepare(torch, module, input_shape, batch: int, dtype: str, device: str, mode: str, what: str,
            input_tokens: int | None = None) -> Target:
    """Move `module` to `device`/`dtype`, make an input of `batch` samples (token ids below `input_tokens` where
    given: `simulator.models.user.model_input`), capture a graph if asked (with its own memory pool: the profiler
    replays graphs in any order), run once."""
    from simulator.models.user import model_input

    failed = f"{what}: failed to run at batch {batch} ({dtype}, {device}, {mode})"
    with failure_named(failed):
        module = module.to(device=device, dtype=torch_dtype(torch, dtype)).eval()
        x = model_input(torch, batch, input_shape, input_tokens, device, torch_dtype(torch, dtype))
        forward = _every_failure_named(_graph(torch, module, x) if mode == "graph" else (lambda: module(x)), failed)
        run = _with_copy(forward)
        with torch.inference_mode():
            out = run()
    require(_holds_tensor(torch, out), f"{failed}: it returned {type(out).__name__}, which holds no tensor: the "
            "profiler times a call until its output is on the host, and there would be nothing to wait for")
    return Target(run=run, forward=forward, module=module, batch=batch, cuda=device != "cpu")


@contextmanager
def failure_named(message: str):
    """Any failure of the model inside the block becomes a FlexsimError of `message` and the exception, on one
    line: it is bad input."""
    try:
        yield
    except BaseException as exc:  # noqa: BLE001 -- any failure of the user's model is bad input
        if not is_model_failure(exc):
            raise
        raise FlexsimError(f"{message}: {exception_line(exc, 200)}") from None


def _every_failure_named(forward, message: str):
    """`forward`, its failures named as `failure_named` does, at every call: a model may fail only after some
    calls (in the warm-up, the timed rounds or the energy windows). A bare ``try`` costs a call nothing."""
    def call():
        try:
            return forward()
        except BaseException as exc:  # noqa: BLE001 -- as failure_named
            if not is_model_failure(exc):
                raise
            raise FlexsimError(f"{message}: {exception_line(exc, 200)}") from None
    return call


def _with_copy(forward):
    def run():
        return to_host(forward())
    return run


def _holds_tensor(torch, out) -> bool:
    """Whether a model's output (copied to the host: `to_host`) holds a tensor anywhere."""
    from torch.utils._pytree import tree_leaves

    return any(isinstance(leaf, torch.Tensor) for leaf in tree_leaves(out))


def to_host(out):
    """The output copied to the host (which waits for the device): a tensor, or each tensor of a tuple, list, dict
    or dataclass output (a model of yours may return several; a dataclass comes back as a dict of its fields)."""
    import dataclasses

    from torch.utils._pytree import tree_map

    def copy(leaf):
        if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
            return {f.name: to_host(getattr(leaf, f.name)) for f in dataclasses.fields(leaf)}
        return leaf.to("cpu") if hasattr(leaf, "to") else leaf
    return tree_map(copy, out)


def _graph(torch, module, x):
    """Capture one forward pass of `module` on the static input `x` as a CUDA graph; return its replay, which
    holds `module` and `x`: the graph reads their memory as it was at capture, and ``torch.cuda.graph`` empties the
    allocator's cache, so a block freed before the next capture is unmapped and its replay faults."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(stream):
        for _ in range(3):
            module(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        out = module(x)

    def replay():
        graph.replay()
        return out
    replay.keep_alive = (module, x)
    return replay


def cuda_event_samples_ms(torch, target: Target, repeats: int, clock):
    """Host wall time of each of `repeats` calls (forward + copy to the host, which synchronises) and the
    CUDA-event device time (ms) of its forward pass."""
    import numpy as np

    host, device = np.empty(repeats), np.empty(repeats)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for i in range(repeats):
        t0 = clock()
        start.record()
        out = target.forward()
        end.record()
        to_host(out)
        host[i] = (clock() - t0) * 1e3
        device[i] = start.elapsed_time(end)
    return host, device
