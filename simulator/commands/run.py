"""``flexsim run [CONFIG.toml] [--flags]``: simulate and print the summary."""

from __future__ import annotations

import argparse
import json

from simulator.config import config_fields, default_of, from_mapping, load_toml, parse_flag
from simulator.config_doc import show_default

DESCRIPTION = """Simulate a stopping policy over cached logits on device profiles under a workload.

Every field of the configuration can be given in a TOML file (keys = field names, optionally under [run])
and as a flag; flags override the file, the file overrides the defaults. With no arguments: the 6-member
flexible ensemble (Fashion-MNIST, shipped logits) on the default profile at 80% load.

Examples:
  flexsim run
  flexsim run --thresholds 0.9,0.8,0.6,0.4,0.2 --deadline-ms 5 --policy threshold,deadline
  flexsim run study.toml --arrivals gamma:load=0.9:2 --out runs/gamma
  flexsim run --policy threshold,custom --custom-policy my_policy.py:slack_threshold \\
      --custom-params 0.8,0.004,0.3 --deadline-ms 10      # your own policy: docs/custom-policies.md
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")


def add_config_arguments(parser: argparse.ArgumentParser, skip=()) -> None:
    """The optional TOML file and a flag per config field (but the fields in `skip`)."""
    parser.add_argument("config", nargs="?", help="TOML configuration file")
    for f in config_fields():
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = _help(f.metadata["help"], default_of(f))
        if f.metadata["parse"] is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar=f.metadata["metavar"] or
                                f.name.upper(), help=help_text)


def _help(text: str, default) -> str:
    """A flag's help: its field's `text`, followed by the default (none: unset), unless the default is unset and
    `text` already says what happens then (escaped for argparse)."""
    if default is None and "default" in text:
        return text.replace("%", "%%")
    return f"{text} (default: {show_default(default)})".replace("%", "%%")


#: Tables a configuration file may hold beside [run], for other commands (`flexsim run` reads [run] alone).
OTHER_TABLES = ("sweep",)


def config_from_args(args: argparse.Namespace, skip=(), others: tuple = OTHER_TABLES):
    """The RunConfig of the TOML file (if any) overridden by the flags given; the fields in `skip` (flags the command
    does not have) at their defaults, whatever the file says; the file's tables `others` are left to their
    commands (a study file's [sweep] table: `flexsim run study.toml` runs its base configuration)."""
    values = {k: v for k, v in (load_toml(args.config, others) if args.config is not None else {}).items()
              if k not in skip}
    names = {f.name for f in config_fields()} - set(skip)
    for name, value in vars(args).items():
        if name in names:
            values[name] = value if isinstance(value, bool) else parse_flag(name, value)
    return from_mapping(values, origin=args.config or "flags")


def run(args: argparse.Namespace) -> int:
    from simulator.logits import load_cache
    from simulator.run import check_out, prepare, run_inputs, stage_model_note, write_outputs

    config = config_from_args(args)
    check_out(config, also_read=[args.config])
    cache = load_cache(config.logits)
    inputs = prepare(config, cache)
    result = run_inputs(inputs, config.engine)
    if config.out:
        write_outputs(result, config.out, config, {d.profile: list(d.models) for d in inputs.devices})
    if args.json:
        print(json.dumps(result.summary.to_dict(), indent=2))
    else:
        print(_header(config))
        print(stage_model_note(inputs, cache, config))
        print(result.summary.text())
        if config.out:
            print(f"wrote {config.out}/requests.csv, summary.json" + (", batches.csv" if config.record_batches else ""))
    return 0


def _header(config) -> str:
    members = ",".join(map(str, config.members))
    return (f"flexsim: members {members} ({config.combiner}, {config.signal}), policy {'+'.join(config.policy)}, "
            f"profile {','.join(config.profile)} x{config.devices}, batch {config.batch_size}, "
            f"arrivals {config.arrivals}, engine {config.engine}")
