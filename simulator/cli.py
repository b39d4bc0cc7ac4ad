"""The ``flexsim`` command line: a registry of subcommands, each in its own module under
``simulator.commands``, imported only when used.

Every subcommand prints a one-line error and exits with status 2 on bad input (FlexsimError); nothing is
written in that case.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from contextlib import contextmanager

from simulator.errors import FlexsimError

#: subcommand -> (module under simulator.commands, one-line help)
COMMANDS = {
    "run": ("run", "simulate a policy on a device profile and a workload"),
    "sweep": ("sweep", "simulate every combination of some fields' values (deadline x energy budget, load, ...)"),
    "bench": ("bench", "benchmark the Numba engine against SimPy and a bare Lindley loop"),
    "profiles": ("profiles", "list the shipped device profiles"),
    "profile": ("profile", "measure models on this host (CPU or CUDA) and write a device profile"),
    "costmodel": ("costmodel", "cost model: accuracy report, derived profiles, layer tables, kernel microbenchmarks, device table"),
    "optimize": ("optimize", "choose thresholds on training logits (grid or descent), check them held out"),
    "optimize-bench": ("optimize_bench", "benchmark the exhaustive threshold grid against straightforward NumPy"),
    "validate": ("validate", "run real models on this host and report how far the simulator is from them"),
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors (a malformed or missing option value, an unknown option) are one line, as
    every other bad input's: ``flexsim CMD: error: ...`` and where to look, exit status 2. Its subcommands' parsers
    are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings (of `parser` and its subcommands) that take exactly one value."""
    options = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _value_options(sub)
        elif action.option_strings and action.nargs is None:
            options.update(action.option_strings)
    return options


def _is_numbers(text: str) -> bool:
    """Whether `text` is a comma-separated list of numbers (``-inf,0.5``, ``-1``)."""
    try:
        [float(part) for part in text.split(",")]
    except ValueError:
        return False
    return True


def join_negative_values(argv: list[str], value_options: set[str]) -> list[str]:
    """``--opt -inf,0.5`` -> ``--opt=-inf,0.5`` for the options in `value_options`.

    argparse takes a value that starts with '-' for an option unless it is a plain negative number, so that
    ``--thresholds -inf,0.5,...`` or ``--exit-fractions -0.1,...`` would fail with "expected one argument";
    a value that is a comma-separated list of numbers is never an option, and is joined to its option here.
    """
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token in value_options and i + 1 < len(argv) and argv[i + 1].startswith("-") and _is_numbers(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def main(argv=None) -> int:
    """Entry point of the ``flexsim`` console script.

    A closed standard output (``flexsim run --json | head``) ends the command quietly, with status 1; one that
    cannot be written (a full disk) with a one-line error and status 2. An error's message is printed on one line
    (a line break in a value it quotes is shown as ``\\n``).
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(join_negative_values(argv, _value_options(parser)))
    try:
        with _terminate_as_interrupt(), _stdout_errors():
            status = int(args._run(args) or 0)
            if sys.stdout is not None:                  # None: started with standard output closed (print skips it)
                sys.stdout.flush()
        return status
    except FlexsimError as exc:
        print(f"flexsim {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except StdoutError as exc:
        _silence_stdout()
        print(f"flexsim {args.command}: error: cannot write to standard output: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1


def one_line(message: str) -> str:
    """`message` with its line breaks written as ``\\n`` (and ``\\r``), so that an error stays one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


class StdoutError(Exception):
    """Standard output could not be written (other than a closed pipe): the OSError's text."""


class _GuardedStdout:
    """Standard output whose write and flush raise `StdoutError` for an OSError other than a closed pipe."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._guarded(self._stream.write, text)

    def flush(self):
        return self._guarded(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    @staticmethod
    def _guarded(call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError(exc.strerror or str(exc)) from None


@contextmanager
def _stdout_errors():
    """While the block runs, standard output raises `StdoutError` where it cannot be written."""
    before = sys.stdout
    if before is not None:
        sys.stdout = _GuardedStdout(before)
    try:
        yield
    finally:
        sys.stdout = before


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``) received: raised like Ctrl-C's KeyboardInterrupt, so that a command stopped
    either way cleans up what it had half written (a staged output folder, temporary files) before it exits."""


@contextmanager
def _terminate_as_interrupt():
    """While the block runs (in the main thread), SIGTERM raises `Terminated` instead of ending the process at once;
    the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated()

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit does not raise again (the Python
    documentation's recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
