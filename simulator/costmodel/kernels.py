"""The kernel model: a call's latency on the CPU as the sum of its kernels' latencies, each predicted from
microbenchmarks of synthetic kernels measured on the device (the approach of nn-Meter, Zhang et al., MobiSys 2021).

A kernel of a layer table (``simulator.costmodel.layers``, with its shape columns) belongs to a *family*
(``FAMILIES``: dense convolution, depthwise convolution, linear layer, batch norm, each element-wise operator,
pooling) and is described by its family's configuration (channels, spatial size, kernel, stride, ...). The
microbenchmark table (``simulator/costmodel/tables/kernels-<profile>.json``, measured by
``simulator.costmodel.kernelbench``) holds the median latency of about a thousand synthetic configurations per device,
sampled from ranges, not copied from any architecture. A kernel's latency is predicted by local linear regression of
log latency on its family's log features over its nearest measured neighbours (`KernelPredictor`).

A call costs ``sum(kernel_ms) + n_kernels * per_kernel_ms + call_ms`` (`CallParams`): the kernels as timed alone,
plus framework overhead per module and per call; the two call parameters are fitted on measured architectures, in
leave-one-architecture-out without the held-out one. (A third parameter, a scale on the kernels' sum, was dropped:
fitted at 0.93-0.97, it made held-out architectures worse with every neighbourhood size tried, docs/cost-model.md.)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import lsq_linear

from simulator.costmodel.layers import KERNEL_TABLE_PREFIX, TABLES_DIR, LayerTable
from simulator.errors import malformed, require

#: family -> configuration fields (integers; the batch size is measured separately).
FAMILIES = {
    "conv": ("c_in", "c_out", "h", "kernel", "stride", "padding"),
    "dwconv": ("c", "h", "kernel", "stride", "padding"),
    "linear": ("in_features", "out_features"),
    "batch_norm": ("c", "h"),
    "relu": ("c", "h"), "relu_": ("c", "h"), "hardswish_": ("c", "h"), "silu_": ("c", "h"),
    "sigmoid": ("c", "h"), "hardsigmoid": ("c", "h"),
    "add_": ("c", "h"),  # two tensors of the same shape [c, h, h]
    "mul": ("c", "h"),  # [c, h, h] times a per-channel [c, 1, 1] (squeeze-and-excitation)
    "max_pool2d": ("c", "h", "kernel", "stride", "padding"),
    "mean": ("c", "h"),  # global average over [h, h], keeping the dimensions
    "adaptive_avg_pool2d": ("c", "h", "out"),
}
ELEMENTWISE = ("relu", "relu_", "hardswish_", "silu_", "sigmoid", "hardsigmoid", "add_", "mul")
_OPS = {"native_batch_norm": "batch_norm", "max_pool2d_with_indices": "max_pool2d", "add": "add_",
        "_adaptive_avg_pool2d": "adaptive_avg_pool2d", "hardswish": "hardswish_", "silu": "silu_",
        "addmm": "linear", "mm": "linear", "linear": "linear"}
_CONV_OPS = {"convolution", "_convolution", "conv2d", "mkldnn_convolution"}


def conv_out(h: np.ndarray, kernel: np.ndarray, stride: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Output size of a convolution or pooling window over an input of size `h`."""
    return (h + 2 * padding - kernel) // stride + 1


def features(family: str, configs: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """The log features of configurations (rows, in the order of ``FAMILIES[family]``) at batch sizes `batch`.

    Parameters
    ----------
    family : str
        A key of `FAMILIES`.
    configs : ndarray, shape (n, len(FAMILIES[family]))
        Configuration fields.
    batch : ndarray, shape (n,)
        Batch sizes.

    Returns
    -------
    ndarray, shape (n, d)
        Natural logs of the quantities a kernel's latency follows (batch, channels, output size, window).
    """
    require(family in FAMILIES, f"kernel model: unknown kernel family {family!r} (known: {', '.join(FAMILIES)})")
    c = {f: np.asarray(configs, dtype=float)[:, i] for i, f in enumerate(FAMILIES[family])}
    b = np.asarray(batch, dtype=float)
    if family == "conv":
        cols = [b, c["c_in"], c["c_out"], conv_out(c["h"], c["kernel"], c["stride"], c["padding"]), c["kernel"],
                c["stride"]]
    elif family in ("dwconv", "max_pool2d"):
        cols = [b, c["c"], conv_out(c["h"], c["kernel"], c["stride"], c["padding"]), c["kernel"], c["stride"]]
    elif family == "linear":
        cols = [b, c["in_features"], c["out_features"]]
    elif family in ELEMENTWISE:
        cols = [b * c["c"] * c["h"] ** 2]
    elif family == "adaptive_avg_pool2d":
        cols = [b, c["c"], c["h"], c["out"]]
    else:  # batch_norm, mean
        cols = [b, c["c"], c["h"]]
    return np.log(np.maximum(np.column_stack(cols), 1.0))


def kernel_config(op: str, shapes: dict) -> tuple[str, tuple[int, ...]]:
    """The family and configuration of a traced kernel (`op` and its shape columns, one value each).

    Raises
    ------
    FlexsimError
        For a kernel no microbenchmark family describes (e.g. a grouped, not depthwise, convolution).
    """
    x, out = shapes["in_shape"], shapes["out_shape"]
    c, h = (x[0] if x else 1), (x[1] if len(x) > 1 else 1)
    if op in _CONV_OPS:
        window = (shapes["kernel"], shapes["stride"], shapes["padding"])
        if shapes["groups"] == 1:
            return "conv", (c, out[0], h) + window
        require(shapes["groups"] == c == out[0], f"kernel model: no kernel family for a grouped convolution with "
                f"{shapes['groups']} groups of {c} input and {out[0]} output channels (only dense and depthwise)")
        return "dwconv", (c, h) + window
    family = _OPS.get(op, op)
    require(family in FAMILIES, f"kernel model: no kernel family for operator {op!r} (known: {', '.join(FAMILIES)})")
    if family == "linear":
        return family, (x[-1], out[-1])
    if family == "mul":  # the per-channel factor may be either operand: describe the full-size one
        full = max((x, shapes["in2_shape"]), key=lambda s: int(np.prod(s)) if s else 0)
        return family, (full[0], full[1] if len(full) > 1 else 1)
    if family == "max_pool2d":
        return family, (c, h, shapes["kernel"], shapes["stride"], shapes["padding"])
    if family == "adaptive_avg_pool2d":
        return family, (c, h, out[1])
    return family, (c, h)


def table_kernels(table: LayerTable) -> dict[str, np.ndarray]:
    """The kernels of a layer table grouped by family: family -> configurations (rows)."""
    require(table.shapes is not None, f"kernel model: layer table {table.model} has no shape columns "
            "(re-trace it with `flexsim costmodel trace`)")
    groups: dict[str, list] = {}
    for i, op in enumerate(table.op):
        family, config = kernel_config(op, {k: v[i] for k, v in table.shapes.items()})
        groups.setdefault(family, []).append(config)
    return {f: np.array(rows, dtype=float) for f, rows in groups.items()}


# ------------------------------------------------------------------------------------------ measured table

@dataclass(frozen=True, eq=False)
class KernelTable:
    """Measured kernel latencies of one device: per family, configurations, batch sizes and median latency (ms)."""

    device: str
    configs: dict  # family -> ndarray (n, fields)
    batch: dict  # family -> ndarray (n,)
    latency_ms: dict  # family -> ndarray (n,)
    provenance: dict

    @property
    def n_measurements(self) -> int:
        return sum(len(v) for v in self.latency_ms.values())

    def to_json(self) -> dict:
        return {"device": self.device, "provenance": self.provenance, "families": {
            f: {"fields": list(FAMILIES[f]), "rows": [[*map(int, c), int(b), float(f"{t:.6g}")] for c, b, t in
                                                     zip(self.configs[f], self.batch[f], self.latency_ms[f])]}
            for f in self.configs}}


def kernel_table_text(table: KernelTable) -> str:
    """The JSON text of a microbenchmark table, one measurement per line."""
    obj = table.to_json()
    families = obj.pop("families")
    head = json.dumps(obj, indent=2)[:-2]
    body = ",\n".join(f'    "{f}": {{"fields": {json.dumps(e["fields"])}, "rows": [\n'
                       + ",\n".join(f"      {json.dumps(r)}" for r in e["rows"]) + "]}" for f, e in families.items())
    return f'{head},\n  "families": {{\n{body}\n  }}\n}}\n'


def kernel_table_from_json(obj: dict, origin: str = "<memory>") -> KernelTable:
    """Parse a microbenchmark table, raising FlexsimError naming what is wrong."""
    where = f"kernel table {origin}"
    configs, batch, latency = {}, {}, {}
    try:
        for family, entry in obj["families"].items():
            require(family in FAMILIES, f"{where}: unknown kernel family {family!r} (known: {', '.join(FAMILIES)})")
            require(tuple(entry["fields"]) == FAMILIES[family],
                    f"{where}: family {family} has fields {entry['fields']}, expected {list(FAMILIES[family])}")
            rows = _family_rows(entry["rows"], len(FAMILIES[family]) + 2, f"{where}: family {family}")
            configs[family], batch[family], latency[family] = rows[:, :-2], rows[:, -2], rows[:, -1]
        table = KernelTable(device=str(obj["device"]), configs=configs, batch=batch, latency_ms=latency,
                            provenance=dict(obj.get("provenance", {})))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise malformed(where, exc) from None
    require(configs, f"{where}: no kernel families")
    return table


def _family_rows(rows, width: int, where: str) -> np.ndarray:
    """A family's rows as an array of `width` columns: non-negative configuration fields, a positive batch size and
    latency; FlexsimError naming the first row that is not."""
    require(isinstance(rows, list) and rows, f"{where}: rows must be a non-empty list")
    for i, row in enumerate(rows):
        require(isinstance(row, list) and len(row) == width, f"{where}: row {i} must be a list of {width} numbers")
        values = np.asarray(row, dtype=float)
        require(np.all(np.isfinite(values)) and np.all(values[:-1] >= 0) and np.all(values[-2:] > 0),
                f"{where}: row {i} = {row} must hold non-negative configuration fields, a positive batch size and "
                "a positive latency")
    return np.asarray(rows, dtype=float)


def kernel_table_path(profile_name: str) -> Path:
    return TABLES_DIR / f"{KERNEL_TABLE_PREFIX}{profile_name}.json"


def load_kernel_table(profile_name: str) -> KernelTable:
    """The committed microbenchmark table of a measured profile."""
    path = kernel_table_path(profile_name)
    require(path.exists(), f"kernel model: no microbenchmark table for profile {profile_name!r} ({path} is missing; "
            "measure one on that device with `flexsim costmodel microbench`)")
    return load_kernel_table_file(path)


def load_kernel_table_file(path) -> KernelTable:
    """The microbenchmark table in file `path`."""
    from simulator.io import read_json

    return kernel_table_from_json(read_json(path, "kernel table"), origin=str(path))


def has_kernel_table(profile_name: str) -> bool:
    return kernel_table_path(profile_name).exists()


# ------------------------------------------------------------------------------------------ predictor

class KernelPredictor:
    """Predicts kernel latencies by local linear regression in each family's log-feature space.

    For a query, the `neighbours` nearest measured kernels of its family (Euclidean distance over features
    standardised by the table's spread) are weighted by a tricube kernel of their distance, and a weighted
    least-squares plane of log latency over the features is evaluated at the query. Exact for latencies that are a
    power law of the features; extrapolates along the local plane outside the measured range.

    Parameters
    ----------
    table : KernelTable
        Measured latencies.
    neighbours : int
        Neighbours per query (at least the number of features + 2 are used).
    ridge : float
        Ridge penalty on the plane's slopes (in standardised units), for neighbourhoods that do not span every
        feature.
    """

    def __init__(self, table: KernelTable, neighbours: int = 16, ridge: float = 1e-3):
        self.table, self.neighbours, self.ridge = table, neighbours, ridge
        self._x, self._y, self._scale = {}, {}, {}
        for family, configs in table.configs.items():
            x = features(family, configs, table.batch[family])
            scale = x.std(axis=0)
            self._scale[family] = np.where(scale > 0, scale, 1.0)
            self._x[family], self._y[family] = x / self._scale[family], np.log(table.latency_ms[family])

    def predict_ms(self, family: str, configs, batch) -> np.ndarray:
        """Predicted latency (ms) of kernels of `family` with `configs` (rows) at `batch` (one per row or one)."""
        require(family in self._x, f"kernel model: the microbenchmark table of {self.table.device} has no "
                f"{family!r} kernels (it has: {', '.join(self._x)})")
        configs = np.atleast_2d(np.asarray(configs, dtype=float))
        batch = np.broadcast_to(np.asarray(batch, dtype=float), (len(configs),))
        q = features(family, configs, batch) / self._scale[family]
        return np.exp([self._local_plane(family, row) for row in q])

    def _local_plane(self, family: str, q: np.ndarray) -> float:
        x, y = self._x[family], self._y[family]
        k = min(len(y), max(self.neighbours, x.shape[1] + 2))
        dist = np.sqrt(((x - q) ** 2).sum(axis=1))
        near = np.argsort(dist, kind="stable")[:k]
        reach = dist[near].max() * 1.0001 + 1e-12
        w = (1 - (dist[near] / reach) ** 3) ** 3 + 1e-6
        design = np.column_stack([np.ones(k), x[near] - q]) * np.sqrt(w)[:, None]
        penalty = np.sqrt(self.ridge) * np.eye(x.shape[1] + 1)[1:]
        lhs = np.vstack([design, penalty])
        rhs = np.concatenate([y[near] * np.sqrt(w), np.zeros(x.shape[1])])
        return float(np.linalg.lstsq(lhs, rhs, rcond=None)[0][0])

    def kernels_ms(self, table: LayerTable, batch: int) -> float:
        """Sum of the predicted latencies (ms) of every kernel of a layer table at `batch`."""
        return float(sum(self.predict_ms(f, c, batch).sum() for f, c in table_kernels(table.at(batch)).items()))


# ------------------------------------------------------------------------------------------ calls

@dataclass(frozen=True)
class CallParams:
    """How kernels add up to a call: ``sum(kernel_ms) + n_kernels * per_kernel_ms + call_ms``."""

    per_kernel_ms: float = 0.0
    call_ms: float = 0.0

    def to_json(self) -> dict:
        return {k: float(f"{v:.6g}") for k, v in vars(self).items()}


def call_ms(kernels_ms: float, n_kernels: int, p: CallParams) -> float:
    """Predicted latency (ms) of a call whose kernels are predicted to take `kernels_ms` in total."""
    return kernels_ms + n_kernels * p.per_kernel_ms + p.call_ms


def fit_call(points, kernel_sums: dict, n_kernels: dict) -> CallParams:
    """Call parameters minimising the squared relative error of `points` (every architecture weighing the same),
    both non-negative.

    Parameters
    ----------
    points : list of Point
        Measured points (architecture, batch, latency).
    kernel_sums : dict
        (architecture, batch) -> predicted sum of kernel latencies (ms).
    n_kernels : dict
        architecture -> kernels per call.
    """
    require(points, "kernel model: no measured points to fit the call parameters on")
    counts = Counter(p.arch for p in points)
    w = np.array([1.0 / np.sqrt(counts[p.arch]) / p.latency_ms for p in points])
    design = np.array([[n_kernels[p.arch], 1.0] for p in points]) * w[:, None]
    target = np.array([p.latency_ms - kernel_sums[p.arch, p.batch] for p in points]) * w
    return CallParams(*(float(v) for v in lsq_linear(design, target, bounds=(0.0, np.inf)).x))


def cross_validate(table: KernelTable, **predictor_args) -> dict[str, np.ndarray]:
    """Leave-one-configuration-out relative errors of the predictor on its own microbenchmark table: each
    configuration (every batch size of it) predicted from the others. Family -> errors ``predicted / measured - 1``.
    """
    errors = {}
    for family, configs in table.configs.items():
        keys = [tuple(c) for c in configs]
        out = np.empty(len(keys))
        for key in set(keys):
            held = np.array([k == key for k in keys])
            if held.all():
                out[held] = np.nan
                continue
            rest = KernelTable(table.device, {family: configs[~held]}, {family: table.batch[family][~held]},
                               {family: table.latency_ms[family][~held]}, {})
            predicted = KernelPredictor(rest, **predictor_args).predict_ms(family, configs[held],
                                                                           table.batch[family][held])
            out[held] = predicted / table.latency_ms[family][held] - 1
        errors[family] = out
    return errors
