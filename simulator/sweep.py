"""Sweeps: one simulation per combination of the values of some configuration fields, and per seed.

The question a sweep answers is the product's: on this device, at these loads, does the policy meet a deadline and
an energy budget, and at what accuracy? ``sweep(vary={"deadline_ms": (2, 4, 8), "energy_budget_j": (0.2, 0.5)})``
simulates every combination (the Cartesian product, the first field varying slowest) on the base configuration,
``seeds`` times each with seeds ``seed, seed + 1, ...``, and keeps each run's `Summary`. Every combination's
configuration is built and checked before the first run, so that a bad value fails at once, naming its field; the
inputs that check prepares for a combination's first seed are kept for its run, as long as they fit in
`KEEP_BYTES` (beyond it they are prepared again when their turn comes).

Any field of `RunConfig` may vary but ``seed`` (use `seeds`), ``out`` (a sweep writes its own folder:
``flexsim sweep --out``) and ``record_batches`` (the runs record no batch-stages: a sweep keeps summaries only).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from dataclasses import dataclass, fields, is_dataclass

import numpy as np

from simulator.config import (RunConfig, check_field_names, default_of, normalised_value, parse_flag, toml_value,
                              with_overrides)
from simulator.errors import FlexsimError, require
from simulator.policies import POLICY_FIELDS, function_text, is_compiled_function, is_unset
from simulator.results import Summary

#: Most simulations one sweep runs (combinations x seeds).
MAX_RUNS = 10_000
#: Most seeds per combination.
MAX_SEEDS = 1_000
#: Most bytes of prepared inputs the check pass keeps for the runs (about 30 bytes a request with 8 stages, 16 more
#: with per-request limits from a trace).
KEEP_BYTES = 256 * 2**20
#: Separator of a field's values in the text form ``FIELD=V1|V2|...`` (`parse_vary`): a character that no field's
#: own text uses (lists take commas, load levels semicolons, arrival specifications colons).
VALUE_SEPARATOR = "|"
#: Fields a sweep does not vary.
NOT_VARIED = {"seed": "give the number of seeds instead (seeds: runs use seed, seed + 1, ...)",
              "out": "a sweep writes its own folder (simulator.sweep.write_sweep, flexsim sweep --out)",
              "record_batches": "a sweep keeps each run's summary only"}
#: Summary figures printed by `SweepResult.text` (the CSV has every one): (field, heading, scale, format).
TEXT_FIGURES = (("accuracy", "accuracy", 1.0, ".4f"), ("latency_mean_ms", "mean ms", 1.0, ".3f"),
                ("latency_p99_ms", "p99 ms", 1.0, ".3f"), ("deadline_miss_rate", "miss %", 100.0, ".2f"),
                ("mean_stages", "stages", 1.0, ".3f"), ("utilisation", "util %", 100.0, ".1f"),
                ("energy_per_request_j", "J/request", 1.0, ".4g"))


def value_text(value) -> str:
    """A field's value as its command-line text (lists joined by commas, None as ``none``, bools as ``true``, a
    compiled function given as ``custom_policy`` as its ``module:qualname``)."""
    if is_compiled_function(value):
        return function_text(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _field_name(key, origin: str) -> str:
    """`key` (snake_case or kebab-case) as a config field's name; FlexsimError where it names none."""
    name = str(key).strip().replace("-", "_")
    require(re.fullmatch(r"[a-z_]+", name), f"{origin}: {str(key)!r:.80} is not a field name")
    check_field_names({name: None}, origin)
    return name


def parse_vary(text: str) -> tuple[str, tuple]:
    """``FIELD=V1|V2|...`` (field in snake_case or kebab-case) as the field's name and its parsed values."""
    key, sep, values = str(text).partition("=")
    require(sep and key.strip(), f"invalid vary = {text!r:.80}: must be FIELD=V1{VALUE_SEPARATOR}V2"
            f"{VALUE_SEPARATOR}... (e.g. 'deadline-ms=2|4|8')")
    name = _field_name(key, "vary")
    items = values.split(VALUE_SEPARATOR)
    require(all(item.strip() for item in items), f"invalid vary = {text!r:.80}: has an empty value (values are "
            f"separated by '{VALUE_SEPARATOR}')")
    return name, tuple(parse_flag(name, item.strip()) for item in items)


def vary_from_table(table: dict, origin: str) -> tuple[dict, int | None]:
    """A TOML ``[sweep]`` table as (vary, seeds): each key a field (snake_case or kebab-case) with an array of
    values, each value read as ``[run]`` reads the field's value (`simulator.config.toml_value`: one item of a list
    field is a list of one), a string read as the field's flag reads it (``"h100"``, ``"0.9,0.8"``); the key
    ``seeds`` the number of seeds (checked; None where absent)."""
    table = dict(table)
    seeds = table.pop("seeds", None)
    if seeds is not None:
        check_seeds(seeds, f"{origin} [sweep]: seeds")
    vary = {}
    for key, values in table.items():
        name = _field_name(key, f"{origin} [sweep]")
        require(name not in vary, f"{origin} [sweep]: {name} is given twice (as {key!r} and another spelling)")
        require(isinstance(values, list), f"{origin} [sweep]: {key} = {values!r:.60} must be an array of values "
                f"(e.g. {key} = [2, 4, 8])")
        vary[name] = tuple(parse_flag(name, v) if isinstance(v, str) else toml_value(name, v, origin) for v in values)
    return vary, seeds


def check_vary(vary) -> dict:
    """`vary` ({field: values}) checked: known fields that may vary, each with at least one value and none twice
    (values as the configuration holds them: 1 and 1.0 are the same deadline)."""
    require(isinstance(vary, dict) and vary, f"invalid vary = {vary!r:.60}: must be a non-empty dict "
            "{field: values}")
    check_field_names(vary, "vary")
    checked = {}
    for name, values in vary.items():
        require(name not in NOT_VARIED, f"vary: {name} cannot vary: {NOT_VARIED.get(name)}")
        listed = isinstance(values, (list, tuple, range)) or (isinstance(values, np.ndarray) and values.ndim >= 1)
        require(listed and len(values) > 0,
                f"vary: {name} = {values!r:.60} must be a non-empty list of values")
        values = tuple(normalised_value(v) for v in values)
        for i, value in enumerate(values):
            repeated = [j for j in range(i) if _same(values[j], value)]
            require(not repeated, f"vary: {name} has the value {value_text(value)!r:.60} twice (values "
                    f"{repeated[0] + 1 if repeated else 0} and {i + 1})")
        checked[name] = values
    return checked


def _same(a, b) -> bool:
    """Whether two field values are equal (numbers by value: 1 == 1.0; anything incomparable differs)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def check_seeds(seeds, what: str = "seeds") -> int:
    require(isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool) and 1 <= seeds <= MAX_SEEDS,
            f"invalid {what} = {seeds!r:.40}: need an integer from 1 to {MAX_SEEDS}")
    return int(seeds)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The runs of a sweep: `configs[i]` ran with `summaries[i]`; combinations in `vary`'s order (the first field
    slowest), each run for every seed in turn. Values are reported as the configurations hold them (normalised:
    lists as tuples)."""

    base: RunConfig
    vary: dict
    seeds: int
    configs: tuple
    summaries: tuple

    def rows(self) -> list[dict]:
        """One dict per run: the varied fields' values, ``seed``, and every `Summary` figure."""
        return [{**{name: getattr(c, name) for name in self.vary}, "seed": c.seed, **s.to_dict()}
                for c, s in zip(self.configs, self.summaries)]

    def means(self) -> list[dict]:
        """One dict per combination: the varied fields' values, ``runs``, and every numeric `Summary` figure's
        mean over the seeds (None where a run has none, e.g. energy without energy figures), with ``_min`` and
        ``_max`` over the seeds of the p99 latency and the deadline-miss rate."""
        out = []
        for i in range(0, len(self.summaries), self.seeds):
            runs = [s.to_dict() for s in self.summaries[i:i + self.seeds]]
            row = {name: getattr(self.configs[i], name) for name in self.vary}
            row["runs"] = len(runs)
            for f in fields(Summary):
                values = [r[f.name] for r in runs]
                row[f.name] = (None if any(v is None for v in values) else values[0] if len(set(values)) == 1
                               else float(np.mean(values)))
            for name in ("latency_p99_ms", "deadline_miss_rate"):
                values = [r[name] for r in runs]
                row[f"{name}_min"], row[f"{name}_max"] = (None, None) if None in values else (min(values), max(values))
            out.append(row)
        return out

    def csv_text(self, rows: list[dict]) -> str:
        """`rows` (`rows()` or `means()`) as CSV: values in their command-line form, None as empty."""
        require(isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows),
                "csv_text: rows must be a non-empty list of rows (SweepResult.rows() or means())")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow("" if v is None else value_text(v) if isinstance(v, tuple) or is_compiled_function(v)
                            else repr(float(v)) if isinstance(v, float) else v for v in row.values())
        return buffer.getvalue()

    def text(self) -> str:
        """The per-combination means as an aligned table (the p99 latency's range over seeds where > 1)."""
        means = self.means()
        figures = [f for f in TEXT_FIGURES if any(row[f[0]] is not None for row in means)]
        head = [*self.vary, *(h for _, h, _, _ in figures)] + (["p99 range ms"] if self.seeds > 1 else [])
        body = []
        for row in means:
            cells = [value_text(row[name]) for name in self.vary]
            cells += ["-" if row[f] is None else format(row[f] * scale, spec) for f, _, scale, spec in figures]
            if self.seeds > 1:
                cells.append(f"{row['latency_p99_ms_min']:.3f}-{row['latency_p99_ms_max']:.3f}")
            body.append(cells)
        widths = [max(len(str(x)) for x in column) for column in zip(head, *body)]
        return "\n".join("  ".join(str(x).rjust(w) for x, w in zip(line, widths)) for line in [head, *body])


def sweep_configs(base: RunConfig, vary: dict, seeds: int) -> list[RunConfig]:
    """Every run's configuration (combinations in order, the first field slowest; seeds fastest), each checked."""
    n_runs = math.prod(len(v) for v in vary.values()) * seeds
    require(n_runs <= MAX_RUNS, f"invalid sweep: {n_runs} runs ({' x '.join(str(len(v)) for v in vary.values())} "
            f"values x {seeds} seeds); at most {MAX_RUNS}")
    last = base.seed + seeds - 1
    try:
        with_overrides(base, seed=last)
    except FlexsimError as exc:
        raise FlexsimError(f"invalid seeds = {seeds} from seed = {base.seed}: the last run's seed {last} is not a "
                           f"seed ({exc})") from None
    _check_policy_fields_used(base, vary)
    configs = []
    for combination in itertools.product(*vary.values()):
        changes = dict(zip(vary, combination))
        try:
            first = with_overrides(base, **{**_unread_policy_fields(changes, vary), **changes})
        except FlexsimError as exc:
            raise FlexsimError(f"sweep run {_changes_text(changes)}: {exc}") from None
        configs += [with_overrides(first, seed=base.seed + k) for k in range(seeds)]
    return configs


def _unread_policy_fields(changes: dict, vary: dict) -> dict:
    """Where `policy` varies, the fields that only a policy reads (`policies.POLICY_FIELDS`: custom_policy,
    static_k, ...) back at their defaults in the runs whose policy lacks that policy, so that one sweep compares
    e.g. ``threshold`` with ``threshold,custom``; a single run with such a field set and unread is refused."""
    if "policy" not in vary:
        return {}
    defaults = {f.name: default_of(f) for f in fields(RunConfig)}
    return {name: defaults[name] for name, owner in POLICY_FIELDS.items()
            if owner not in changes["policy"] and name not in changes}


def _check_policy_fields_used(base: RunConfig, vary: dict) -> None:
    """FlexsimError where `policy` varies and a field that only a policy reads is set but no value of `policy`
    has that policy (every run would clear it: `_unread_policy_fields`)."""
    for name, owner in POLICY_FIELDS.items() if "policy" in vary else ():
        require(is_unset(getattr(base, name)) or name in vary or any(owner in p for p in vary["policy"]),
                f"invalid sweep: {name} is set but no value of policy has {owner} (it would change nothing)")


def sweep(config: RunConfig | None = None, *, vary: dict, seeds: int = 1, progress=None,
          **changes) -> SweepResult:
    """Simulate every combination of `vary`'s values ({field: values}) on `config` (default: the embedded default)
    with fields overridden by keyword, `seeds` times each.

    `progress`, where given, is called with (runs done, runs) after each run.

    Examples
    --------
    >>> from simulator.sweep import sweep
    >>> result = sweep(vary={"deadline_ms": (3.0, 8.0)}, policy=("threshold", "deadline"), requests=2000)
    >>> [row["deadline_ms"] for row in result.means()]
    [3.0, 8.0]
    >>> result.means()[0]["deadline_miss_rate"] > result.means()[1]["deadline_miss_rate"]
    True
    """
    require(config is None or isinstance(config, RunConfig),
            f"sweep: config must be a RunConfig (or None), got {type(config).__name__}")
    check_field_names(changes, "sweep")
    kept = sorted(set(changes) & {"out", "record_batches"})          # the seed is the first run's
    require(not kept, f"sweep: {', '.join(kept)} cannot be set: {'; '.join(NOT_VARIED[k] for k in kept)}")
    require(progress is None or callable(progress), f"sweep: progress must be a function (done, total), got "
            f"{type(progress).__name__}")
    base = with_overrides(config or RunConfig(), **changes, out=None, record_batches=False)
    vary, seeds = check_vary(vary), check_seeds(seeds)
    configs = sweep_configs(base, vary, seeds)
    runs = _Runs()
    for i in range(0, len(configs), seeds):         # every combination checked before the first run
        runs.check(i, configs[i], vary)
    summaries = []
    for i, run_config in enumerate(configs):
        summaries.append(runs.summary(i, run_config, vary))
        if progress is not None:
            progress(i + 1, len(configs))
    return SweepResult(base=base, vary=vary, seeds=seeds, configs=tuple(configs), summaries=tuple(summaries))


class _Runs:
    """Prepares and runs a sweep's configurations, each logit cache loaded once and each cache's stage signals
    computed once per (members, combiner, signal): they are most of a run's preparation. The inputs prepared to
    check a configuration are kept for its run while they fit in `KEEP_BYTES`."""

    def __init__(self):
        self.caches, self.signals = {}, {}
        self.kept, self.kept_bytes = {}, 0

    def check(self, index: int, config: RunConfig, vary: dict) -> None:
        """Prepare run `index` (raising its error, named), keeping its inputs where they fit."""
        inputs = self.prepare(config, vary)
        size = _own_bytes(inputs)
        if self.kept_bytes + size <= KEEP_BYTES:
            self.kept[index] = inputs
            self.kept_bytes += size

    def prepare(self, config: RunConfig, vary: dict):
        from simulator.logits import load_cache
        from simulator.run import check_members, prepare
        from simulator.signals import stage_signals

        try:
            if config.logits not in self.caches:
                self.caches[config.logits] = load_cache(config.logits)
            cache = self.caches[config.logits]
            key = (config.logits, config.members, config.combiner, config.signal)
            if key not in self.signals:
                members = check_members(config.members, cache)
                self.signals[key] = stage_signals(cache.logits, cache.labels, members, config.combiner, config.signal)
            return prepare(config, cache, signals=self.signals[key])
        except FlexsimError as exc:
            raise FlexsimError(f"sweep run {_combination_text(config, vary)}: {exc}") from None

    def summary(self, index: int, config: RunConfig, vary: dict) -> Summary:
        from simulator.run import run_inputs

        inputs = self.kept.pop(index, None) or self.prepare(config, vary)
        try:
            return run_inputs(inputs, config.engine).summary
        except FlexsimError as exc:
            raise FlexsimError(f"sweep run {_combination_text(config, vary)}: {exc}") from None


def _own_bytes(inputs) -> int:
    """Bytes of the arrays a run's prepared inputs hold of their own (not the stage signals, which the sweep's runs
    share): its arrivals, samples, draws, per-request limits, device tables and speed traces."""
    def size(value) -> int:
        if isinstance(value, np.ndarray):
            return value.nbytes
        if isinstance(value, (tuple, list)):
            return sum(size(v) for v in value)
        if is_dataclass(value) and not isinstance(value, type):
            return sum(size(getattr(value, f.name)) for f in fields(value))
        return 0

    return sum(size(getattr(inputs, f.name)) for f in fields(inputs) if f.name != "stages")


def _combination_text(config: RunConfig, vary: dict) -> str:
    return _changes_text({name: getattr(config, name) for name in vary}) + f", seed={config.seed}"


def _changes_text(changes: dict) -> str:
    return ", ".join(f"{name}={value_text(value)}"[:80] for name, value in changes.items())


#: The files a sweep writes into its folder (`write_sweep`); the figure only where one or two fields vary.
SWEEP_FILES = ("runs.csv", "sweep.csv", "sweep.json", "sweep.png")


def check_sweep_folder(folder) -> None:
    """Check, before a sweep runs, that `write_sweep` can write into `folder`: it can be created or written in, and
    none of `SWEEP_FILES` there is a directory."""
    from pathlib import Path

    from simulator.io import check_output_dir

    folder = check_output_dir(folder)
    blocked = [name for name in SWEEP_FILES if (Path(folder) / name).is_dir()]
    require(not blocked, f"invalid out = {str(folder)!r}: {blocked[0] if blocked else ''} there is a directory")


def write_sweep(result: SweepResult, folder) -> None:
    """Write runs.csv (`rows`), sweep.csv (`means`), sweep.json (the base configuration, the varied values, the
    seeds and the means) and, where one or two fields vary, sweep.png (`simulator.sweep_plot.plot_sweep`) into
    `folder`, as one set: either every file is replaced (and an earlier sweep.png that this sweep does not draw is
    removed) or, on failure, none. Other files in the folder are left as they are."""
    from pathlib import Path

    from simulator.io import atomic_paths, json_text, naming, output_dir
    from simulator.run import jsonable
    from simulator.sweep_plot import can_plot, plot_sweep

    means = result.means()
    record = {"config": jsonable(result.base.to_dict()), "vary": jsonable(result.vary), "seeds": result.seeds,
              "means": jsonable(means)}
    writers = {"runs.csv": lambda path: Path(path).write_text(result.csv_text(result.rows())),
               "sweep.csv": lambda path: Path(path).write_text(result.csv_text(means)),
               "sweep.json": lambda path: Path(path).write_text(json_text(record))}
    if can_plot(result):
        writers["sweep.png"] = lambda path: plot_sweep(result, path)
    with output_dir(folder) as out, atomic_paths([out / name for name in writers],
                                                 [out / name for name in SWEEP_FILES if name not in writers]) as tmps:
        for tmp, (name, write) in zip(tmps, writers.items()):
            with naming(out / name):
                write(tmp)
