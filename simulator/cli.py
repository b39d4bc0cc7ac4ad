"""The ``flexsim`` command line: a registry of subcommands, each in its own module under
``simulator.commands``, imported only when used.

Every subcommand prints a one-line error and exits with status 2 on bad input (FlexsimError); nothing is
written in that case.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from simulator.errors import FlexsimError

#: subcommand -> (module under simulator.commands, one-line help)
COMMANDS = {
    "run": ("run", "simulate a policy on a device profile and a workload"),
    "bench": ("bench", "benchmark the Numba engine against SimPy and a bare Lindley loop"),
    "profiles": ("profiles", "list the shipped device profiles"),
    "profile": ("profile", "measure models on this host (CPU or CUDA) and write a device profile"),
    "costmodel": ("costmodel", "cost model: accuracy report, derived profiles, layer tables, device table"),
    "optimize": ("optimize", "choose thresholds on training logits (grid or descent), check them held out"),
    "optimize-bench": ("optimize_bench", "benchmark the exhaustive threshold grid against straightforward NumPy"),
    "validate": ("validate", "run real models on this host and report how far the simulator is from them"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flexsim",
        description="Hardware-aware simulator of flexible DNN inference (flexible ensembles, early-exit "
                    "cascades, dynamic sub-networks) under deadlines and energy budgets.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = _module(module)
        p = sub.add_parser(name, help=help_text, description=getattr(command, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def _module(name: str):
    return importlib.import_module(f"simulator.commands.{name}")


def main(argv=None) -> int:
    """Entry point of the ``flexsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except FlexsimError as exc:
        print(f"flexsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
