"""Workloads: when requests arrive, and the per-request deadline and energy budget.

Arrival specifications (the ``arrivals`` config field):

- ``poisson:RATE``: Poisson arrivals at RATE requests/s;
- ``gamma:RATE:CV``: renewal process with Gamma inter-arrival times of coefficient of variation CV
  (CV > 1 is burstier than Poisson);
- ``mmpp:RATE_LOW:RATE_HIGH:DWELL_S``: a two-state Markov-modulated Poisson process that stays in each
  state for an exponential time of mean DWELL_S seconds (starts in the low state);
- ``trace:PATH``: arrival times replayed from a CSV file with a column ``arrival_s`` (sorted, finite, from 0 to
  `MAX_ARRIVAL_S`) and optional columns ``deadline_ms``, ``energy_budget_j`` (each request's own, overriding the
  config's) and ``sample`` (integer indices);
- ``closed`` or ``closed:CLIENTS``: closed loop: each of CLIENTS clients (default 1) sends its next request
  when its previous one finishes.

In ``poisson``, ``gamma`` and ``mmpp`` a rate may be written ``load=X`` instead: the rate that offers X of the
devices' combined capacity given the policy's mean service time on each (utilisation X on alike devices; see
`simulator.run.service_per_capacity_s`); for ``mmpp`` the two rates then are X·(1 ∓ 0.5) of that rate.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, given_twice, require
from simulator.io import parsed_file, read_text

KINDS = ("poisson", "gamma", "mmpp", "trace", "closed")


@dataclass(frozen=True)
class ArrivalSpec:
    """A parsed arrival specification.

    ``rates`` are requests/s; a rate given as ``load=X`` is stored as ``None`` with ``load = X`` and resolved
    with `ArrivalSpec.resolve`.
    """

    kind: str
    rates: tuple = ()
    load: float | None = None
    cv: float = 1.0
    dwell_s: float = 1.0
    clients: int = 1
    path: str | None = None

    @property
    def closed(self) -> bool:
        return self.kind == "closed"

    def resolve(self, mean_service_s: float) -> "ArrivalSpec":
        """Replace a ``load=X`` rate by ``X / mean_service_s``."""
        if self.load is None:
            return self
        base = self.load / mean_service_s
        require(math.isfinite(base) and base > 0, f"arrivals load={self.load:g}: the mean service time "
                f"{mean_service_s:.3g} s gives no usable rate ({base:.3g} requests/s); check the profile's latencies")
        rates = (base * 0.5, base * 1.5) if self.kind == "mmpp" else (base,)
        return ArrivalSpec(self.kind, rates, None, self.cv, self.dwell_s, self.clients, self.path)


def parse_arrivals(text: str) -> ArrivalSpec:
    """Parse an arrival specification such as ``poisson:1200`` or ``gamma:load=0.8:2``."""
    require(isinstance(text, str) and text, f"invalid arrivals = {text!r}: expected e.g. poisson:1000")
    kind, colon, rest = text.partition(":")
    require(kind in KINDS, f"invalid arrivals = {text!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    parts = rest.split(":") if rest else []
    require(kind != "closed" or not colon or rest, f"invalid arrivals = {text!r}: nothing after the colon (write "
            "closed alone for one client, or closed:CLIENTS)")
    return _PARSERS[kind](text, parts)


def _number(text: str, part: str, what: str, minimum: float = 0.0, strict: bool = True) -> float:
    try:
        x = float(part)
    except ValueError:
        raise FlexsimError(f"invalid arrivals = {text!r}: {what} {part!r} is not a number") from None
    ok = math.isfinite(x) and (x > minimum if strict else x >= minimum)
    require(ok, f"invalid arrivals = {text!r}: {what} must be {'>' if strict else '>='} {minimum}, got {part}")
    return x


def _rate(text: str, part: str) -> tuple[float | None, float | None]:
    """A rate field: a number (req/s) or ``load=X`` with 0 < X."""
    if part.startswith("load="):
        return None, _number(text, part[5:], "load")
    return _number(text, part, "rate (requests/s)"), None


def _parse_poisson(text, parts):
    require(len(parts) == 1, f"invalid arrivals = {text!r}: expected poisson:RATE or poisson:load=X")
    rate, load = _rate(text, parts[0])
    return ArrivalSpec("poisson", (rate,), load)


#: Smallest and largest coefficient of variation of gamma gaps (shape 1 / CV^2 from 1e12, as regular as arrivals
#: get, to 1e-4, where nearly every gap rounds to zero and the arrivals come in a few huge bursts).
MIN_CV, MAX_CV = 1e-6, 100.0
#: Most dwell periods an MMPP may draw for its arrivals (each is drawn in turn).
MAX_DWELL_PERIODS = 10_000_000


def _parse_gamma(text, parts):
    require(len(parts) == 2, f"invalid arrivals = {text!r}: expected gamma:RATE:CV")
    rate, load = _rate(text, parts[0])
    cv = _number(text, parts[1], "CV", MIN_CV, strict=False)
    require(cv <= MAX_CV, f"invalid arrivals = {text!r}: CV must be <= {MAX_CV:g}, got {parts[1]}")
    return ArrivalSpec("gamma", (rate,), load, cv=cv)


def _parse_mmpp(text, parts):
    require(len(parts) in (2, 3), f"invalid arrivals = {text!r}: expected mmpp:RATE_LOW:RATE_HIGH:DWELL_S "
            "or mmpp:load=X:DWELL_S")
    if parts[0].startswith("load="):
        require(len(parts) == 2, f"invalid arrivals = {text!r}: expected mmpp:load=X:DWELL_S")
        return ArrivalSpec("mmpp", (), _rate(text, parts[0])[1], dwell_s=_number(text, parts[1], "DWELL_S"))
    require(len(parts) == 3, f"invalid arrivals = {text!r}: expected mmpp:RATE_LOW:RATE_HIGH:DWELL_S")
    low = _number(text, parts[0], "RATE_LOW")
    high = _number(text, parts[1], "RATE_HIGH")
    return ArrivalSpec("mmpp", (low, high), None, dwell_s=_number(text, parts[2], "DWELL_S"))


def _parse_trace(text, parts):
    require(len(parts) >= 1 and parts[0], f"invalid arrivals = {text!r}: expected trace:PATH")
    return ArrivalSpec("trace", path=":".join(parts))


def _parse_closed(text, parts):
    require(len(parts) <= 1, f"invalid arrivals = {text!r}: expected closed or closed:CLIENTS")
    clients = 1 if not parts else _number(text, parts[0], "CLIENTS")
    require(float(clients).is_integer(), f"invalid arrivals = {text!r}: CLIENTS must be an integer")
    return ArrivalSpec("closed", clients=int(clients))


_PARSERS = {"poisson": _parse_poisson, "gamma": _parse_gamma, "mmpp": _parse_mmpp,
            "trace": _parse_trace, "closed": _parse_closed}


# ----------------------------------------------------------------------------------------------- generation

def generate_arrivals(spec: ArrivalSpec, n_requests: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of `n_requests` requests for an open-loop `spec` whose rates are resolved."""
    require(spec.load is None, "arrivals: a load=X rate must be resolved before generating arrivals")
    require(isinstance(n_requests, (int, np.integer)) and n_requests >= 1,
            f"arrivals: n_requests = {n_requests!r:.40} must be an integer >= 1")
    if spec.kind == "poisson":
        gaps = rng.exponential(1.0 / spec.rates[0], size=n_requests)
    elif spec.kind == "gamma":
        shape = 1.0 / spec.cv ** 2
        gaps = rng.gamma(shape, 1.0 / (spec.rates[0] * shape), size=n_requests)
    elif spec.kind == "mmpp":
        return _mmpp(spec.rates, spec.dwell_s, n_requests, rng)
    else:
        raise FlexsimError(f"arrivals: {spec.kind} arrivals are not generated")
    return check_arrival_times(np.cumsum(gaps), _describe(spec), "arrival", _TOO_SLOW)


#: latest arrival time accepted (s), ~32 years: up to there a float64 time resolves 0.24 us or better, beyond it
#: service times of microseconds are lost in rounding
MAX_ARRIVAL_S = 1e9


def check_arrival_times(arrival_s: np.ndarray, where: str, row: str, hint: str = "") -> np.ndarray:
    """`arrival_s` if every time is a finite number <= `MAX_ARRIVAL_S`, else FlexsimError naming the first bad one.

    `where` names the source (a trace file, an arrival specification), `row` how one entry is called, and `hint`
    (if any) is appended to the message.
    """
    bad = np.flatnonzero(~np.isfinite(arrival_s))
    if bad.size:
        raise FlexsimError(f"{where}: {row} {bad[0] + 1} = {arrival_s[bad[0]]} is not a finite number{hint}")
    far = np.flatnonzero(arrival_s > MAX_ARRIVAL_S)
    if far.size:
        raise FlexsimError(f"{where}: {row} {far[0] + 1} = {arrival_s[far[0]]:.3g} s is beyond {MAX_ARRIVAL_S:g} s "
                           f"(~32 years), where float64 times lose sub-microsecond resolution{hint}")
    return arrival_s


_TOO_SLOW = " (the rate is too small)"


def _describe(spec: ArrivalSpec) -> str:
    return f"arrivals {spec.kind} at {'/'.join(f'{r:g}' for r in spec.rates)} requests/s"


def _mmpp(rates, dwell_s: float, n_requests: int, rng: np.random.Generator) -> np.ndarray:
    """Two-state MMPP: exponential dwell periods alternating low/high; Poisson arrivals within each."""
    spec = ArrivalSpec("mmpp", tuple(rates), dwell_s=dwell_s)
    expected_s = n_requests / np.mean(rates)
    require(expected_s <= MAX_ARRIVAL_S, f"{_describe(spec)}: {n_requests} arrivals would take about "
            f"{expected_s:.3g} s, beyond {MAX_ARRIVAL_S:g} s{_TOO_SLOW}")
    require(expected_s / dwell_s <= MAX_DWELL_PERIODS, f"{_describe(spec)}: DWELL_S = {dwell_s:g} s is too short for "
            f"{n_requests} arrivals (about {expected_s / dwell_s:.3g} dwell periods, at most {MAX_DWELL_PERIODS:g})")
    chunks, total, t, state = [], 0, 0.0, 0
    while total < n_requests:
        length = rng.exponential(dwell_s)
        within = _poisson_times(rates[state], length, n_requests - total, rng)
        chunks.append(t + within)
        total += within.size
        t += length
        state = 1 - state
    return check_arrival_times(np.concatenate(chunks)[:n_requests], _describe(spec), "arrival", _TOO_SLOW)


def _poisson_times(rate: float, length: float, limit: int, rng: np.random.Generator) -> np.ndarray:
    """The first (at most `limit`) arrival times of a Poisson process of `rate` in ``[0, length)``, drawn as
    exponential gaps in batches a little larger than the expected count, so that a long period at a high rate draws
    no more than the run needs and a short one no more than it holds."""
    out, t = [], 0.0
    while limit > 0:
        expected = rate * (length - t)
        k = int(min(limit, expected + 10.0 * math.sqrt(expected) + 16.0))
        times = t + np.cumsum(rng.exponential(1.0 / rate, size=k))
        inside = times[times < length]
        out.append(inside)
        limit -= inside.size
        if inside.size < k:
            break
        t = float(times[-1])
    return np.concatenate(out) if out else np.zeros(0)


@dataclass(frozen=True, eq=False)
class Trace:
    """Columns of a trace file."""

    arrival_s: np.ndarray
    deadline_ms: np.ndarray | None = None
    energy_budget_j: np.ndarray | None = None
    sample: np.ndarray | None = None


def read_trace(path: str | Path) -> Trace:
    """Read a trace CSV: column ``arrival_s`` (sorted, >= 0), optional ``deadline_ms``, ``energy_budget_j``,
    ``sample``; parsed once while the file is unchanged (`simulator.io.parsed_file`: its arrays are read-only)."""
    require(isinstance(path, (str, os.PathLike)), f"trace: {path!r:.40} is not a path")
    return parsed_file(path, "trace", _parse_trace)


def _parse_trace(path: str | Path) -> Trace:
    path = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(path, "trace"), newline=""), strict=True)
    try:
        require(reader.fieldnames is not None and "arrival_s" in reader.fieldnames,
                f"trace {path}: no column 'arrival_s' (columns: {reader.fieldnames})")
        twice = given_twice(reader.fieldnames)
        require(not twice, f"trace {path}: column {', '.join(twice)} appears more than once")
        rows = list(reader)
    except csv.Error as exc:
        raise FlexsimError(f"trace {path}: malformed CSV ({exc})") from None
    for i, row in enumerate(rows):
        require(None not in row and None not in row.values(), f"trace {path}: row {i + 1} has "
                f"{'more' if None in row else 'fewer'} fields than the header's {len(reader.fieldnames)}")
    require(len(rows) > 0, f"trace {path}: the trace is empty")
    columns = {name: _column(path, rows, name) for name in ("arrival_s", "deadline_ms", "energy_budget_j", "sample")
               if name in rows[0]}
    arrival = check_arrival_times(columns["arrival_s"], f"trace {path}", "arrival_s row")
    bad = np.flatnonzero(~(arrival >= 0))
    if bad.size:
        raise FlexsimError(f"trace {path}: arrival_s row {bad[0] + 1} = {arrival[bad[0]]} is negative")
    down = np.flatnonzero(np.diff(arrival) < 0)
    if down.size:
        i = down[0] + 1
        raise FlexsimError(f"trace {path}: arrival_s is not sorted (row {i + 1} = {arrival[i]} "
                           f"comes after {arrival[i - 1]})")
    sample = columns.get("sample")
    if sample is not None:
        sample = _sample_indices(path, sample)
    return _read_only(Trace(arrival, columns.get("deadline_ms"), columns.get("energy_budget_j"), sample))


def _read_only(trace: Trace) -> Trace:
    """`trace` with its arrays made read-only (a parsed trace is shared between its readers)."""
    for column in (trace.arrival_s, trace.deadline_ms, trace.energy_budget_j, trace.sample):
        if column is not None:
            column.flags.writeable = False
    return trace


def _column(path: Path, rows: list[dict], name: str) -> np.ndarray:
    values = np.empty(len(rows))
    for i, row in enumerate(rows):
        try:
            values[i] = float(row[name])
        except (TypeError, ValueError):
            raise FlexsimError(f"trace {path}: {name} row {i + 1} = {row[name]!r} is not a number") from None
    return values


#: sample indices a trace may hold: those of an int32 (what the engines index samples with)
MAX_SAMPLE = np.iinfo(np.int32).max


def _sample_indices(path: Path, sample: np.ndarray) -> np.ndarray:
    """The trace column `sample` as int64 indices, or FlexsimError naming the first row that is not an integer in
    [0, MAX_SAMPLE]."""
    ok = (sample >= 0) & (sample <= MAX_SAMPLE) & (sample == np.floor(sample))
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise FlexsimError(f"trace {path}: sample row {bad[0] + 1} = {sample[bad[0]]:g} is not a sample index "
                           f"(column 'sample' must hold integers in [0, {MAX_SAMPLE}])")
    return sample.astype(np.int64)
