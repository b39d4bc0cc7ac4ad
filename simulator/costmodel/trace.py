"""Trace a PyTorch model into a `LayerTable`: every ATen kernel of one forward pass with its FLOPs and elements.

Runs the model at batch 1 and 2 under a ``TorchDispatchMode`` (needs PyTorch, imported lazily by callers); where the
kernels of batch 2 are not those of batch 1 scaled, the table also holds them (`LayerTable.batched`). View
operations (outputs that alias an input without writing it) and allocations are not kernels and are skipped.
FLOPs of convolutions and matrix products come from ``torch.utils.flop_counter``; every other kernel counts one
operation per output element.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry, sdpa_flop_count

from simulator.costmodel.layers import KINDS, SHAPE_COLUMNS, LayerTable
from simulator.errors import FlexsimError, exception_line, is_model_failure, require
from simulator.models.user import UserModel

#: Not kernels: allocations, and ``_unsafe_view`` (a view whose schema does not say so).
_ALLOCATIONS = {"empty", "empty_like", "empty_strided", "zeros", "ones", "full", "_unsafe_view"}
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "linear"}
#: Fused attention (``scaled_dot_product_attention``'s kernels): matrix products, counted as ``sdpa_flop_count``.
_ATTENTION = "_scaled_dot_product_"
_CONV = {"convolution", "_convolution", "conv2d", "cudnn_convolution", "mkldnn_convolution"}
#: Lookups that read only the rows of a weight they gather (an embedding of token ids), not the whole weight.
_GATHERS = {"embedding"}


def _is_view(func) -> bool:
    returns = func._schema.returns
    alias = returns[0].alias_info if returns else None
    return alias is not None and not alias.is_write


def _kind(name: str, args) -> str:
    """``matmul`` (linear layers, batched products, attention), ``dwconv`` (depthwise: a group per input channel),
    ``conv`` (dense or grouped) or ``other``."""
    if name in _MATMUL or name.startswith(_ATTENTION):
        return "matmul"
    if name in _CONV:
        groups = args[8] if len(args) > 8 else 1
        return "dwconv" if groups > 1 and groups == args[0].shape[1] else "conv"
    return "other"


def _flops(func, args, kwargs, out) -> float:
    packet = func.overloadpacket
    if packet in flop_registry:
        return float(flop_registry[packet](*args, **kwargs, out_val=out))
    if packet.__name__.startswith(_ATTENTION):       # the CPU's fused attention, which the registry lacks
        return float(sdpa_flop_count(args[0].shape, args[1].shape, args[2].shape))
    return float(sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)))


class _KernelRecorder(TorchDispatchMode):
    """Records (op, kind, flops, activation elements, parameter elements, shapes) of every kernel dispatched."""

    def __init__(self, parameter_ptrs: set[int], batch: int = 1):
        super().__init__()
        self.parameter_ptrs = parameter_ptrs
        self.batch = batch
        self.rows = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if not _is_view(func) and name not in _ALLOCATIONS:
            self.rows.append(self._row(func, name, args, kwargs, out))
        return out

    def _row(self, func, name, args, kwargs, out):
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        weights = [_storage(t) in self.parameter_ptrs for t in inputs]
        params = sum(_stored_elements(t) for t, w in zip(inputs, weights) if w)
        activations = [t for t, w in zip(inputs, weights) if not w]
        acts = sum(t.numel() for t in activations)
        acts += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        if name in _GATHERS:            # the rows gathered (as many as it writes), per sample, not the weight
            params, acts = 0, acts + out.numel()
        shapes = _shapes(name, activations, args, out, self.batch)
        return name, KINDS.index(_kind(name, args)), _flops(func, args, kwargs, out), acts, params, shapes


def _storage(tensor) -> int:
    """The address of the memory a tensor lives in: a parameter's views (a slice of a packed attention weight, as
    ``MultiheadAttention`` makes for its keys and values, or a parameter expanded over the batch) share it, where
    their own first elements (``data_ptr``) may lie elsewhere in it."""
    return tensor.untyped_storage().data_ptr()


def _stored_elements(tensor) -> int:
    """The elements a kernel reads of a parameter's view: its own, at most those stored (a parameter expanded over
    the batch is read once, not once a sample)."""
    return min(tensor.numel(), tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1))


def _ints(value, n: int = 1) -> int:
    """The first of an int or a list of ints (square kernels, strides and paddings)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else n
    return int(value)


def _shapes(name: str, activations, args, out, batch: int = 1) -> dict:
    """Per-sample shapes (`_per_sample`) of a kernel's first two activation inputs and its first output, and the
    window of a convolution or pooling kernel (kernel size, stride, padding, groups; 0 where none)."""
    outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    window = {"kernel": 0, "stride": 0, "padding": 0, "groups": 0}
    if name in _CONV:
        window = {"kernel": int(args[1].shape[-1]), "stride": _ints(args[3]), "padding": _ints(args[4]),
                  "groups": int(args[8]) if len(args) > 8 else 1}
    elif name.startswith("max_pool2d"):
        window = {"kernel": _ints(args[1]), "stride": _ints(args[2] if len(args) > 2 and args[2] else args[1]),
                  "padding": _ints(args[3]) if len(args) > 3 else 0, "groups": 0}
    return {"in_shape": _per_sample(activations[0], batch) if activations else [],
            "in2_shape": _per_sample(activations[1], batch) if len(activations) > 1 else [],
            "out_shape": _per_sample(outputs[0], batch) if outputs else [], **window}


def _per_sample(tensor, batch: int) -> list[int]:
    """A tensor's shape for one of the `batch` samples it was traced with: the leading dimension dropped where it is
    the batch; otherwise (the samples folded into another dimension: a linear layer on ``[batch * tokens,
    features]``, a sequence-first ``[tokens, batch, features]`` layout) ``[rows, last dimension]`` holding one
    sample's elements."""
    shape = list(tensor.shape)
    if not shape or shape[0] == batch:
        return shape[1:]
    elements, last = tensor.numel() // batch, max(shape[-1], 1)
    return [elements // last, last] if len(shape) > 1 and elements % last == 0 else [elements]


#: The batch size at which a trace is checked: its FLOPs per sample must be within `CHECK_RTOL` of batch 1's.
CHECK_BATCH = 2
CHECK_RTOL = 0.05


def trace_module(module, input_shape, name: str, traced_with: str = "", input_tokens: int | None = None) -> LayerTable:
    """The layer table of `module` (in eval mode) for one sample of `input_shape` (float32, on the CPU; token ids
    below `input_tokens` where given).

    The module runs at batch 1 and again at `CHECK_BATCH`; FlexsimError unless both do the same FLOPs per sample
    (what the table's scaling to any batch size assumes). PyTorch's fused fast path of
    transformer layers is switched off while tracing, so that their matrix products are counted."""
    from simulator.models.user import check_input_tokens

    input_tokens = check_input_tokens(input_tokens)
    module = module.eval()
    ptrs = {_storage(t) for t in list(module.parameters()) + list(module.buffers())}
    rows, check = (_trace_rows(module, ptrs, input_shape, name, b, input_tokens) for b in (1, CHECK_BATCH))
    require(rows, f"model {name}: its forward pass ran no kernel (nothing to cost)")
    _check_per_sample(rows, check, name)
    params = sum(p.numel() for p in module.parameters())
    table, batched = (_table(r, name, input_shape, params, traced_with, input_tokens) for r in (rows, check))
    return table if _same_kernels(table, batched) else replace(table, batched=batched)


def _table(rows: list, name: str, input_shape, params: int, traced_with: str, input_tokens=None) -> LayerTable:
    return LayerTable(
        model=name, input_shape=tuple(input_shape), params=params, input_tokens=input_tokens,
        op=tuple(r[0] for r in rows), kind=np.array([r[1] for r in rows], dtype=np.int64),
        flops=np.array([r[2] for r in rows], dtype=np.float64),
        act_elems=np.array([r[3] for r in rows], dtype=np.float64),
        param_elems=np.array([r[4] for r in rows], dtype=np.float64),
        shapes={k: [r[5][k] for r in rows] for k in SHAPE_COLUMNS},
        traced_with=traced_with or f"torch {torch.__version__}")


def _same_kernels(one: LayerTable, other: LayerTable) -> bool:
    """Whether `other` (traced at `CHECK_BATCH`) runs the kernels of `one` (batch 1) with the same counts per
    sample: then `one` scaled costs every batch size. Not so where PyTorch lays the batch out differently (attention:
    a transposed tensor with a batch of 1 counts as contiguous, so batch 1 skips the copies that batch 2 makes)."""
    return (one.op == other.op and one.shapes == other.shapes
            and all(np.allclose(getattr(one, c), getattr(other, c), rtol=1e-9, atol=0)
                    for c in ("flops", "act_elems", "param_elems")))


def _trace_rows(module, ptrs, input_shape, name: str, batch: int, input_tokens: int | None = None) -> list:
    """The recorder's rows of one forward pass at `batch`, counts per sample; FlexsimError where the model fails."""
    from simulator.models.user import input_text, model_input

    recorder = _KernelRecorder(ptrs, batch)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        x = model_input(torch, batch, input_shape, input_tokens)
        with torch.no_grad(), recorder:
            module(x)
    except BaseException as exc:  # noqa: BLE001 -- a model's own failure (or exit), named on one line
        if not is_model_failure(exc):
            raise
        raise FlexsimError(f"model {name}: failed to run on {input_text(batch, input_shape, input_tokens)} "
                           f"({exception_line(exc, 200)})") from None
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return [(op, kind, flops / batch, acts / batch, params, shapes)
            for op, kind, flops, acts, params, shapes in recorder.rows]


def _check_per_sample(rows: list, check: list, name: str) -> None:
    """FlexsimError where the FLOPs per sample at `CHECK_BATCH` differ from batch 1's by more than `CHECK_RTOL`
    (layout copies that come and go with the batch size, as in attention, are allowed)."""
    one, other = sum(r[2] for r in rows), sum(r[2] for r in check)
    require(abs(other - one) <= CHECK_RTOL * one, f"model {name}: {other:.4g} FLOPs per sample at batch {CHECK_BATCH} "
            f"against {one:.4g} at batch 1 (does the model fold the batch into another dimension, e.g. "
            "x.flatten()?): its cost cannot be scaled from one sample")


def trace_model(model) -> LayerTable:
    """Trace a model: a name known to `simulator.models.registry`, or a `simulator.models.user.UserModel`."""
    from simulator.models.registry import build_model, input_shape, input_tokens, model_name, parse_models

    model = model if isinstance(model, UserModel) else parse_models([model])[0]
    module, implementation = build_model(model)
    tokens = input_tokens(model)
    inputs = "" if tokens is None else f", input: token ids below {tokens}"
    return trace_module(module, input_shape(model), model_name(model),
                        f"torch {torch.__version__}, {implementation}{inputs}", tokens)
