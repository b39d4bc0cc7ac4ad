"""Trace a PyTorch model into a `LayerTable`: every ATen kernel of one forward pass with its FLOPs and elements.

Runs the model once at batch 1 under a ``TorchDispatchMode`` (needs PyTorch, imported lazily by callers). View
operations (outputs that alias an input without writing it) and allocations are not kernels and are skipped.
FLOPs of convolutions and matrix products come from ``torch.utils.flop_counter``; every other kernel counts one
operation per output element.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

from simulator.costmodel.layers import KINDS, SHAPE_COLUMNS, LayerTable
from simulator.errors import FlexsimError, require
from simulator.models.user import UserModel

_ALLOCATIONS = {"empty", "empty_like", "empty_strided", "zeros", "ones", "full"}
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "linear"}
_CONV = {"convolution", "_convolution", "conv2d", "cudnn_convolution", "mkldnn_convolution"}


def _is_view(func) -> bool:
    returns = func._schema.returns
    alias = returns[0].alias_info if returns else None
    return alias is not None and not alias.is_write


def _kind(name: str, args) -> str:
    if name in _MATMUL:
        return "matmul"
    if name in _CONV:
        groups = args[8] if len(args) > 8 else 1
        return "dwconv" if groups > 1 else "conv"
    return "other"


def _flops(func, args, kwargs, out) -> float:
    packet = func.overloadpacket
    if packet in flop_registry:
        return float(flop_registry[packet](*args, **kwargs, out_val=out))
    return float(sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)))


class _KernelRecorder(TorchDispatchMode):
    """Records (op, kind, flops, activation elements, parameter elements, shapes) of every kernel dispatched."""

    def __init__(self, parameter_ptrs: set[int]):
        super().__init__()
        self.parameter_ptrs = parameter_ptrs
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
        params = sum(t.numel() for t in inputs if t.data_ptr() in self.parameter_ptrs)
        acts = sum(t.numel() for t in inputs if t.data_ptr() not in self.parameter_ptrs)
        acts += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        shapes = _shapes(name, [t for t in inputs if t.data_ptr() not in self.parameter_ptrs], args, out)
        return name, KINDS.index(_kind(name, args)), _flops(func, args, kwargs, out), acts, params, shapes


def _ints(value, n: int = 1) -> int:
    """The first of an int or a list of ints (square kernels, strides and paddings)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else n
    return int(value)


def _shapes(name: str, activations, args, out) -> dict:
    """Per-sample shapes (batch dimension dropped) of a kernel's first two activation inputs and its first output,
    and the window of a convolution or pooling kernel (kernel size, stride, padding, groups; 0 where none)."""
    outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    window = {"kernel": 0, "stride": 0, "padding": 0, "groups": 0}
    if name in _CONV:
        window = {"kernel": int(args[1].shape[-1]), "stride": _ints(args[3]), "padding": _ints(args[4]),
                  "groups": int(args[8]) if len(args) > 8 else 1}
    elif name.startswith("max_pool2d"):
        window = {"kernel": _ints(args[1]), "stride": _ints(args[2] if len(args) > 2 and args[2] else args[1]),
                  "padding": _ints(args[3]) if len(args) > 3 else 0, "groups": 0}
    return {"in_shape": list(activations[0].shape[1:]) if activations else [],
            "in2_shape": list(activations[1].shape[1:]) if len(activations) > 1 else [],
            "out_shape": list(outputs[0].shape[1:]) if outputs else [], **window}


def trace_module(module, input_shape, name: str, traced_with: str = "") -> LayerTable:
    """The layer table of `module` (in eval mode) for one sample of `input_shape` (float32, on the CPU)."""
    module = module.eval()
    ptrs = {t.data_ptr() for t in list(module.parameters()) + list(module.buffers())}
    recorder = _KernelRecorder(ptrs)
    x = torch.randn(1, *input_shape)
    try:
        with torch.no_grad(), recorder:
            module(x)
    except Exception as exc:  # noqa: BLE001 -- a model's own failure, named on one line
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise FlexsimError(f"model {name}: failed to run on a float32 input of shape {[1, *input_shape]} "
                           f"({type(exc).__name__}: {text})") from None
    rows = recorder.rows
    require(rows, f"model {name}: its forward pass ran no kernel (nothing to cost)")
    return LayerTable(
        model=name, input_shape=tuple(input_shape), params=sum(p.numel() for p in module.parameters()),
        op=tuple(r[0] for r in rows), kind=np.array([r[1] for r in rows], dtype=np.int64),
        flops=np.array([r[2] for r in rows], dtype=np.float64),
        act_elems=np.array([r[3] for r in rows], dtype=np.float64),
        param_elems=np.array([r[4] for r in rows], dtype=np.float64),
        shapes={k: [r[5][k] for r in rows] for k in SHAPE_COLUMNS},
        traced_with=traced_with or f"torch {torch.__version__}")


def trace_model(model) -> LayerTable:
    """Trace a model: a name known to `simulator.models.registry`, or a `simulator.models.user.UserModel`."""
    from simulator.models.registry import build_model, input_shape, model_name, parse_models

    model = model if isinstance(model, UserModel) else parse_models([model])[0]
    module, implementation = build_model(model)
    return trace_module(module, input_shape(model), model_name(model), f"torch {torch.__version__}, {implementation}")
