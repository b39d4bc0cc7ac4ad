"""Layer tables: the kernels one forward pass of a model runs, with their FLOPs and elements moved.

A table is traced once at batch 1 (``simulator.costmodel.trace``) and committed as JSON under
``simulator/costmodel/tables/``, so that predicting never needs PyTorch. Per kernel it holds:

- ``kind``: ``conv`` (dense convolution), ``dwconv`` (grouped/depthwise), ``matmul`` (linear layers) or ``other``
  (element-wise, normalisation, pooling: memory-bound);
- ``flops``: floating-point operations per sample (a multiply-add counts 2);
- ``act_elems``: activation elements read and written per sample (inputs + outputs);
- ``param_elems``: weight elements read (independent of the batch size);
- shapes (``SHAPE_COLUMNS``, for the kernel model of `simulator.costmodel.kernels`; absent from tables traced
  before they were recorded): ``in_shape``, ``in2_shape``, ``out_shape``, the per-sample shapes (batch dimension
  dropped) of the first two activation inputs and the first output (``[]`` where none), and ``kernel``, ``stride``,
  ``padding``, ``groups`` of convolutions and max-pooling (0 for other kernels).

For a batch of ``b`` samples in a dtype of ``s`` bytes: FLOPs ``b * flops`` and bytes
``s * (b * act_elems + param_elems)``. Both are exact for the kernels of these architectures, which scale linearly
with the batch size (checked by the tests against a trace at batch 2).

A model whose kernels at batch 2 are not those of batch 1 scaled (attention: at batch 1 PyTorch takes a transposed
tensor whose batch dimension is 1 as contiguous, while from batch 2 it copies it first, and a linear layer on it runs
as ``mm`` plus a bias ``add`` instead of one ``addmm``) also holds its batch-2 kernels, per sample, as ``batched``:
a table of its own, which costs every batch size from 2 on (`LayerTable.at`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from simulator.errors import given_twice, malformed, require
from simulator.models.user import NAME_PATTERN

KINDS = ("conv", "dwconv", "matmul", "other")
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
SHAPE_COLUMNS = ("in_shape", "in2_shape", "out_shape", "kernel", "stride", "padding", "groups")
TABLES_DIR = Path(__file__).resolve().parent / "tables"
KERNEL_TABLE_PREFIX = "kernels-"


@dataclass(frozen=True, eq=False)
class LayerTable:
    """The kernels of one forward pass of `model` (per sample), in execution order."""

    model: str
    input_shape: tuple[int, ...]
    params: int
    op: tuple[str, ...]
    kind: np.ndarray
    flops: np.ndarray
    act_elems: np.ndarray
    param_elems: np.ndarray
    traced_with: str = ""
    shapes: dict | None = None  # SHAPE_COLUMNS -> one value per kernel; None for tables traced without shapes
    batched: "LayerTable | None" = None  # the kernels from batch 2 on, where they are not batch 1's scaled
    input_tokens: int | None = None  # traced on token ids below this (a user's model of tokens), else floats

    def at(self, batch: int) -> "LayerTable":
        """The table that costs a call of `batch` samples: `batched` from batch 2 on where there is one, else this."""
        return self if batch < 2 or self.batched is None else self.batched

    @property
    def n_kernels(self) -> int:
        return len(self.op)

    def flops_at(self, batch: int) -> np.ndarray:
        """FLOPs of each kernel at batch size `batch`."""
        return self.flops * float(batch)

    def bytes_at(self, batch: int, dtype: str) -> np.ndarray:
        """Bytes each kernel moves at batch size `batch` in `dtype`."""
        require(dtype in DTYPE_BYTES, f"dtype = {dtype!r} must be one of {', '.join(DTYPE_BYTES)}")
        return DTYPE_BYTES[dtype] * (self.act_elems * float(batch) + self.param_elems)

    @cached_property
    def in_elems(self) -> np.ndarray:
        """Per sample, the elements of each kernel's first activation input (0 where none); needs `shapes`."""
        return _elements(self.shapes["in_shape"])

    @cached_property
    def out_elems(self) -> np.ndarray:
        """Per sample, the elements of each kernel's first output (0 where none); needs `shapes`."""
        return _elements(self.shapes["out_shape"])

    def kind_mask(self, kind: str) -> np.ndarray:
        return self.kind == KINDS.index(kind)

    def to_json(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape),
                **({"input_tokens": self.input_tokens} if self.input_tokens is not None else {}), "params": self.params,
                "traced_with": self.traced_with, "n_kernels": self.n_kernels,
                "total_gflops_per_sample": round(float(self.flops.sum()) / 1e9, 6),
                "columns": {"op": list(self.op), "kind": [KINDS[k] for k in self.kind],
                            "flops": self.flops.tolist(), "act_elems": self.act_elems.tolist(),
                            "param_elems": self.param_elems.tolist(), **(self.shapes or {})},
                **({"batched": self.batched.to_json()} if self.batched is not None else {})}


def _elements(shapes) -> np.ndarray:
    return np.array([np.prod(s) if s else 0 for s in shapes], dtype=float)


def table_text(table: LayerTable) -> str:
    """The JSON text of a table, one line per column (diff-friendly, compact)."""
    obj = table.to_json()
    columns = obj.pop("columns")
    obj.pop("batched", None)
    head = json.dumps(obj, indent=2)[:-2]
    body = ",\n".join(f'    "{k}": {json.dumps(v)}' for k, v in columns.items())
    text = f'{head},\n  "columns": {{\n{body}\n  }}'
    if table.batched is not None:               # the batch-2 kernels' table, written the same way, inside this one
        text += ',\n  "batched": ' + table_text(table.batched).rstrip("\n").replace("\n", "\n  ")
    return text + "\n}\n"


def table_from_json(obj: dict, origin: str = "<memory>") -> LayerTable:
    """Parse a layer table, raising FlexsimError naming the faulty field."""
    where = f"layer table {origin}"
    try:
        cols = obj["columns"]
        unknown = [k for k in cols["kind"] if k not in KINDS]
        if unknown:
            raise ValueError(f"kind {unknown[0]!r} must be one of {', '.join(KINDS)}")
        kinds = [KINDS.index(k) for k in cols["kind"]]
        arrays = [_numbers(cols[c], c) for c in ("flops", "act_elems", "param_elems")]
        if not isinstance(obj["model"], str) or not all(isinstance(op, str) for op in cols["op"]):
            raise ValueError("the model and each op must be a name (a string)")
        table = LayerTable(model=obj["model"], input_shape=tuple(_count(s) for s in obj["input_shape"]),
                           params=_count(obj["params"]), op=tuple(cols["op"]), kind=np.asarray(kinds, dtype=np.int64),
                           flops=arrays[0], act_elems=arrays[1], param_elems=arrays[2],
                           traced_with=str(obj.get("traced_with", "")), shapes=_shape_columns(cols),
                           input_tokens=None if obj.get("input_tokens") is None else _count(obj["input_tokens"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed(where, exc) from None
    if obj.get("batched") is not None:
        batched = obj["batched"]
        require(isinstance(batched, dict), f"{where}: batched must be a layer table (an object)")
        inner = table_from_json(batched, f"{origin} (batched)")
        require(inner.batched is None and (inner.model, inner.input_shape, inner.params, inner.input_tokens)
                == (table.model, table.input_shape, table.params, table.input_tokens),
                f"{where}: batched must be a table of the same model, input shape and params, without its own")
        table = replace(table, batched=inner)
    lengths = {len(table.op), len(table.kind), *(len(a) for a in arrays),
               *(len(v) for v in (table.shapes or {}).values())}
    require(len(lengths) == 1 and table.n_kernels > 0, f"{where}: columns must be non-empty and of equal length")
    require(all(np.all(np.isfinite(a) & (a >= 0) & (a <= MAX_COUNT)) for a in arrays),
            f"{where}: counts must be finite, >= 0 and <= {MAX_COUNT:g}")
    require(NAME_PATTERN.fullmatch(table.model), f"{where}: model name {table.model!r} must be letters, digits and "
            "._- (starting with a letter or digit): it names a profile model and a file")
    require(table.params >= 0 and table.input_shape and min(table.input_shape) >= 1,
            f"{where}: params must be >= 0 and input_shape positive integers")
    if table.shapes is not None:
        _check_shapes(table, where)
    return table


def _check_shapes(table: LayerTable, where: str) -> None:
    """FlexsimError naming the first convolution whose shapes no forward pass could have: without channels and a
    spatial size, with a dimension of 0, or with a kernel, stride or groups below 1. (Other kernels may take empty
    tensors: a concatenation with an empty branch is traced as it ran.)"""
    s = table.shapes
    for i, op in enumerate(table.op):
        if KINDS[table.kind[i]] in ("conv", "dwconv"):
            for column in ("in_shape", "out_shape"):
                require(0 not in s[column][i], f"{where}: kernel {i} ({op}): its {column} {s[column][i]} has a "
                        "dimension of 0")
            require(len(s["in_shape"][i]) >= 2 and len(s["out_shape"][i]) >= 2,
                    f"{where}: kernel {i} ({op}) is a convolution, but its in_shape {s['in_shape'][i]} or out_shape "
                    f"{s['out_shape'][i]} lacks channels and a spatial size")
            for c in ("kernel", "stride", "groups"):
                require(s[c][i] >= 1, f"{where}: kernel {i} ({op}) is a convolution with {c} = {s[c][i]} (must be >= 1)")


#: Largest count (FLOPs or elements per sample) a layer table may hold: 10^18, far beyond any model.
MAX_COUNT = 1e18


def _shape_columns(cols: dict) -> dict | None:
    """The shape columns of a table's JSON columns (None when the table has none; all or none must be there)."""
    present = [c for c in SHAPE_COLUMNS if c in cols]
    if not present:
        return None
    missing = sorted(set(SHAPE_COLUMNS) - set(present))
    if missing:
        raise ValueError(f"shape columns missing: {', '.join(missing)}")
    shapes = {c: [[_count(d) for d in s] for s in cols[c]] for c in SHAPE_COLUMNS[:3]}
    return {**shapes, **{c: [_count(v) for v in cols[c]] for c in SHAPE_COLUMNS[3:]}}


def _count(value) -> int:
    """A whole number from 0 to `MAX_COUNT` (params, shapes; ValueError otherwise: a float is not truncated)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"params and shape entries must be whole numbers from 0 to {MAX_COUNT:g}, got {value!r}")
    return value


def _numbers(values, column: str) -> np.ndarray:
    """A count column as a 1-D float array (ValueError unless a list of numbers)."""
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{column} must be a list of numbers")
    return np.asarray(values, dtype=np.float64)


def table_path(model: str) -> Path:
    return TABLES_DIR / f"{model}.json"


#: Layer tables given for models without a committed one, while `given_tables` is active.
_GIVEN: dict[str, LayerTable] = {}


@contextmanager
def given_tables(tables):
    """Within the block, `load_table` and `known_tables` also know `tables` (a user's traced models: the accuracy
    check of a profile that measured them); a committed model's name is refused."""
    tables = list(tables)
    names = [t.model for t in tables]
    clash = sorted((set(names) & set(committed_tables())) | set(given_twice(names)))
    require(not clash, f"layer tables: {', '.join(clash)} given twice or named as a committed table")
    before = dict(_GIVEN)
    _GIVEN.update({t.model: t for t in tables})
    try:
        yield
    finally:
        _GIVEN.clear()
        _GIVEN.update(before)


def known_tables() -> tuple[str, ...]:
    """Models with a layer table: the committed ones and those given (`given_tables`)."""
    return tuple(sorted({*committed_tables(), *_GIVEN}))


def load_table(model: str) -> LayerTable:
    """The committed layer table of `model` (hyphenated name, e.g. ``resnet50``, ``fmnist-cnn-w32``), or one given
    with `given_tables`."""
    if model in _GIVEN:
        return _GIVEN[model]
    path = table_path(model)
    require(path.exists(), f"cost model: no layer table for model {model!r} "
            f"(have: {', '.join(committed_tables()) or 'none'}; trace one with `flexsim costmodel trace`)")
    return table_from_json(json.loads(path.read_text()), origin=str(path))


def read_table(path: str | Path) -> LayerTable:
    """A layer table file (``flexsim costmodel trace``'s output, e.g. of a user's model); FlexsimError naming the file
    and what is wrong with it."""
    from simulator.io import read_json

    obj = read_json(path, "layer table")
    require(isinstance(obj, dict), f"layer table {path}: malformed (a JSON object expected)")
    return table_from_json(obj, origin=str(path))


def save_table(path: str | Path, table: LayerTable) -> None:
    """Write `table` to `path` atomically (`table_text`)."""
    from simulator.io import write_text_atomic

    write_text_atomic(path, table_text(table))


def committed_tables() -> tuple[str, ...]:
    """Models that have a committed layer table (the microbenchmark tables ``kernels-*.json`` beside them are not)."""
    return tuple(sorted(p.stem for p in TABLES_DIR.glob("*.json") if not p.stem.startswith(KERNEL_TABLE_PREFIX)))
