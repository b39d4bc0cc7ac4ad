"""Chosen thresholds in the forms that ``flexsim run`` reads: command-line flags and a TOML configuration."""

from __future__ import annotations

import shlex
from pathlib import Path

from simulator.config import RunConfig
from simulator.errors import require
from simulator.optimize.evaluate import check_thresholds, flat_numbers, format_threshold


def thresholds_text(thresholds) -> str:
    """``T0,T1,...`` exactly as ``--thresholds`` parses them back."""
    return ",".join(format_threshold(t) for t in flat_numbers(thresholds, "thresholds"))


def _fields(config: RunConfig, absolute: bool = False) -> list[tuple[str, str, str]]:
    """(flag, TOML key, value) of the fields that define the ensemble and its device, as set in `config`;
    `absolute`: files (a cache or profile given by path, not a built-in name) as absolute paths, for a
    configuration file read from anywhere."""
    where = _absolute if absolute else str
    rows = [("logits", where(config.logits)), ("members", ",".join(map(str, config.members))),
            ("combiner", config.combiner), ("signal", config.signal),
            ("profile", ",".join(where(p) for p in config.profile))]
    if config.models is not None:
        rows.append(("models", ",".join(config.models)))
    return [(name.replace("_", "-"), name, value) for name, value in rows]


def _absolute(name_or_path) -> str:
    """A cache or profile as given where it is a built-in name, else its file's absolute path."""
    from simulator.logits import BUILTIN_CACHES
    from simulator.profiles import shipped_profiles

    text = str(name_or_path)
    return text if text in BUILTIN_CACHES or text in shipped_profiles() else str(Path(text).resolve())


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
    """A ``[run]`` table for ``flexsim run CONFIG.toml`` with the threshold policy and `thresholds` (files as absolute
    paths: the table is read from wherever it is run); `comments`: a sequence of lines (each kept on its one
    line)."""
    thresholds = check_thresholds(thresholds, len(config.members))
    require(isinstance(comments, (list, tuple)) and all(isinstance(c, str) for c in comments),
            f"invalid comments = {comments!r:.40}: must be a sequence of strings")
    lines = [f"# {' '.join(c.splitlines())}" for c in comments] + ["[run]"]
    lines += [f"{key} = {_toml_value(key, value)}" for _, key, value in _fields(config, absolute=True)]
    if not config.use_cost_scale:
        lines.append("use_cost_scale = false")
    lines.append('policy = ["threshold"]')
    lines.append("thresholds = [" + ", ".join(format_threshold(t) for t in thresholds) + "]")
    return "\n".join(lines) + "\n"
