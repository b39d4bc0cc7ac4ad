"""The one error type that flexsim raises for bad input."""


class FlexsimError(ValueError):
    """Bad input: a one-line message naming the field and the value that is wrong.

    The CLI prints the message and exits with status 2; no output file is written.
    """


def require(condition, message):
    """Raise `FlexsimError(message)` unless `condition` holds."""
    if not condition:
        raise FlexsimError(message)


def given_twice(values) -> list:
    """The values that occur more than once in `values`, sorted: what an error about repeated names reports."""
    values = list(values)
    return sorted({v for v in values if values.count(v) > 1})


def malformed(where: str, exc: Exception) -> FlexsimError:
    """The one-line error for a file `where` whose content had the wrong form, from the `exc` reading it raised: a
    `FlexsimError` as it is, a missing key named, anything else with its type."""
    if isinstance(exc, FlexsimError):
        return exc
    if isinstance(exc, KeyError):
        return FlexsimError(f"{where}: lacks the field {exc}")
    return FlexsimError(f"{where}: malformed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")


def is_model_failure(exc: BaseException) -> bool:
    """Whether `exc`, raised by a user's model (its forward pass, its builder), is the model's failure, to be named
    on one line as bad input: anything (an exception, the code exiting) but a FlexsimError of ours and a stop asked
    for from outside (KeyboardInterrupt: Ctrl-C, and SIGTERM while a command runs)."""
    return not isinstance(exc, (FlexsimError, KeyboardInterrupt))


def exception_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception on one line, for a message naming what failed: ``Type: the first line of its message`` (at most
    `limit` characters of it), or ``Type`` where it has none."""
    text = str(exc).strip()
    first = text.splitlines()[0][:limit] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def script_exit(main, *args) -> int:
    """The exit status of a script's ``main(*args)`` (``experiments/``): its own, or 2 with ``error: MESSAGE`` on one
    line of standard error for bad input (a `FlexsimError`), as the flexsim command does."""
    import sys

    try:
        return int(main(*args) or 0)
    except FlexsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
