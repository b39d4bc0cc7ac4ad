"""What a stage computes: the member's forward pass on the request's input, and the copy of its output to the host.

Imports PyTorch; the rest of flexsim imports this module only to train, profile or run real models.

- `EagerStage`: eager PyTorch (CPU or CUDA): ``module(x)`` then the output copied to the host.
- `GraphStage`: the forward pass captured once as a CUDA graph and replayed per call (CUDA only).
- `ReplayStage`: any compute model does the work (its output is copied to the host too) while the logits the
  policy sees are the cached logits of the request's sample: timing at a chosen member cost, decisions replayed.

Every stage is a callable ``stage(sample) -> float32 logits [n_classes]`` on the host.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from simulator.errors import require
from simulator.models.fmnist import INPUT_SIZE, FashionCNN
from simulator.runner.bundle import SampleSet, TrainedMembers

EXECUTIONS = ("eager", "graph")
#: A replay compute model: a registry model name, optionally ``@RESOLUTION`` for square inputs of that size.
COMPUTE_PATTERN = re.compile(r"(?P<name>[a-z0-9_-]+)(@(?P<resolution>[1-9][0-9]*))?")


def member_modules(members: TrainedMembers, device: str) -> list:
    """The trained members as `FashionCNN` modules in eval mode on `device`."""
    modules = []
    for i, (width, state) in enumerate(zip(members.widths, members.states)):
        module = FashionCNN(int(width))
        misfit = state_misfit(module.state_dict(), state)
        require(misfit is None, f"runner: member {i} of {members.source} does not fit FashionCNN({width}): {misfit}")
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        modules.append(module.eval().to(device))
    return modules


def state_misfit(expected: dict, given: dict) -> str | None:
    """What keeps the tensors `given` (name -> array) from loading into a module whose state is `expected` (name ->
    tensor): the first missing or unexpected name, or the first shape that differs; None where they fit."""
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing:
        return f"no tensor {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    if unexpected:
        return f"an unexpected tensor {unexpected[0]}" + (f" (and {len(unexpected) - 1} more)"
                                                          if len(unexpected) > 1 else "")
    for name, tensor in expected.items():
        if tuple(tensor.shape) != tuple(np.shape(given[name])):
            return f"{name} has shape {tuple(np.shape(given[name]))}, the model's is {tuple(tensor.shape)}"
    return None


def normalized_images(samples: SampleSet, pixel_mean: float, pixel_std: float, device: str) -> torch.Tensor:
    """The samples' images as the members' input ``[n, 1, height, width]`` float32 on `device`; FlexsimError for
    images of another size than the members' (`simulator.models.fmnist.INPUT_SIZE`)."""
    size = tuple(samples.images.shape[1:])
    require(size == INPUT_SIZE, f"runner: samples file {samples.source}: images are {size[0]}x{size[1]}, the members "
                                f"take {INPUT_SIZE[0]}x{INPUT_SIZE[1]}")
    x = torch.from_numpy(samples.images.astype(np.float32) / np.float32(255.0))
    return ((x - pixel_mean) / pixel_std).unsqueeze(1).contiguous().to(device)


def _to_host(output: torch.Tensor) -> np.ndarray:
    """The first row of a stage's output, copied to host memory (synchronises a CUDA device)."""
    return output.to("cpu").numpy()[0]


class EagerStage:
    """One member's eager forward pass on sample ``s`` of `inputs` (a batch-1 slice), output copied to the host."""

    def __init__(self, module, inputs: torch.Tensor):
        self.module, self.inputs = module, inputs

    def __call__(self, sample: int) -> np.ndarray:
        with torch.inference_mode():
            return _to_host(self.module(self.inputs[sample:sample + 1]))


class GraphStage:
    """One member's forward pass captured as a CUDA graph on a static input buffer, replayed per call."""

    def __init__(self, module, inputs: torch.Tensor, warmup_calls: int = 3):
        require(inputs.is_cuda, "runner: execution = graph needs a CUDA device (--device cuda)")
        # The graph replays into the memory of the weights and the inputs as they were at capture: both must stay
        # alive (torch.cuda.graph empties the allocator's cache, so a freed block is unmapped by the next capture).
        self.module, self.inputs = module, inputs
        self.static_in = inputs[:1].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup_calls):
                module(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.static_out = module(self.static_in)

    def __call__(self, sample: int) -> np.ndarray:
        self.static_in.copy_(self.inputs[sample:sample + 1])
        self.graph.replay()
        return _to_host(self.static_out)


def logit_dtype(cache_dtype) -> np.dtype:
    """The type the host decides on for a cache of `cache_dtype`: float32 (float16 widens to it exactly), float64
    for a float64 cache, whose values float32 would round (and the simulator decides on them in float64)."""
    return np.result_type(cache_dtype, np.float32)


class ReplayStage:
    """A compute stage that does the work, and the cached logits of the member that the policy sees."""

    def __init__(self, compute, logits: np.ndarray):
        self.compute = compute
        self.logits = np.ascontiguousarray(logits, dtype=logit_dtype(logits.dtype))

    def __call__(self, sample: int) -> np.ndarray:
        self.compute(0)
        return self.logits[sample]


def make_stage(module, inputs: torch.Tensor, execution: str):
    """An `EagerStage` or a `GraphStage` of `module` over `inputs`."""
    require(execution in EXECUTIONS, f"invalid execution = {execution!r}: must be one of {', '.join(EXECUTIONS)}")
    return GraphStage(module, inputs) if execution == "graph" else EagerStage(module, inputs)


def compute_model(spec: str, device: str, seed: int = 0):
    """A replay compute model from ``NAME[@RESOLUTION]`` (random weights) and one input for it, on `device`."""
    from simulator.models.registry import build_model, input_shape

    match = COMPUTE_PATTERN.fullmatch(spec.strip().lower())
    require(match is not None, f"invalid replay compute model = {spec!r}: expected NAME or NAME@RESOLUTION")
    torch.manual_seed(seed)
    module, _ = build_model(match["name"])
    shape = input_shape(match["name"])
    if match["resolution"]:
        shape = (shape[0], int(match["resolution"]), int(match["resolution"]))
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed))
    return module.eval().to(device), x.to(device)


def set_threads(threads: int) -> int:
    """Set PyTorch's intra-op threads; return the previous number."""
    require(isinstance(threads, int) and threads >= 1, f"invalid threads = {threads!r}: must be an integer >= 1")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def stage_logits(stage, n_samples: int, n_classes: int) -> np.ndarray:
    """Logits of `stage` on samples ``0..n_samples-1``, one batch-1 call each (how a logit cache for live runs is
    made: exactly the calls the runner makes)."""
    out = np.empty((n_samples, n_classes), dtype=np.float32)
    for s in range(n_samples):
        out[s] = stage(s)
    return out
