"""Chosen thresholds in the forms that ``flexsim run`` reads: command-line flags and a TOML configuration."""

from __future__ import annotations

import shlex

from simulator.config import RunConfig
from simulator.errors import require
from simulator.optimize.evaluate import check_thresholds, flat_numbers, format_threshold


def thresholds_text(thresholds) -> str:
    """``T0,T1,...`` exactly as ``--thresholds`` parses them back."""
    return ",".join(format_threshold(t) for t in flat_numbers(thresholds, "thresholds"))


def _fields(config: RunConfig) -> list[tuple[str, str, str]]:
    """(flag, TOML key, value) of the fields that define the ensemble and its device, as set in `config`."""
    rows = [("logits", config.logits), ("members", ",".join(map(str, config.members))),
            ("combiner", config.combiner), ("signal", config.signal), ("profile", ",".join(config.profile))]
    if config.models is not None:
        rows.append(("models", ",".join(config.models)))
    return [(name.replace("_", "-"), name, value) for name, value in rows]


def run_command(config: RunConfig, thresholds) -> str:
    """The ``flexsim run`` command line that simulates `config` with the threshold policy and `thresholds`.

    ``--thresholds=`` is written with an equals sign so that a leading ``-inf`` is not taken for a flag.
    """
    thresholds = check_thresholds(thresholds, len(config.members))       # as `flexsim run` will check them
    flags = " ".join(f"--{flag} {shlex.quote(value)}" for flag, _, value in _fields(config))
    no_scale = "" if config.use_cost_scale else " --no-use-cost-scale"
    return f"flexsim run {flags}{no_scale} --policy threshold --thresholds={thresholds_text(thresholds)}"


def _toml_value(key: str, value: str) -> str:
    if key == "members":
        return f"[{value.replace(',', ', ')}]"
    if key in ("profile", "models"):
        return "[" + ", ".join(f'"{v}"' for v in value.split(",")) + "]"
    return f'"{value}"'


def toml_snippet(config: RunConfig, thresholds, comments=()) -> str:
    """A ``[run]`` table for ``flexsim run CONFIG.toml`` with the threshold policy and `thresholds`; `comments`: a
    sequence of lines (each kept on its one line)."""
    thresholds = check_thresholds(thresholds, len(config.members))
    require(isinstance(comments, (list, tuple)) and all(isinstance(c, str) for c in comments),
            f"invalid comments = {comments!r:.40}: must be a sequence of strings")
    lines = [f"# {' '.join(c.splitlines())}" for c in comments] + ["[run]"]
    lines += [f"{key} = {_toml_value(key, value)}" for _, key, value in _fields(config)]
    if not config.use_cost_scale:
        lines.append("use_cost_scale = false")
    lines.append('policy = ["threshold"]')
    lines.append("thresholds = [" + ", ".join(format_threshold(t) for t in thresholds) + "]")
    return "\n".join(lines) + "\n"
