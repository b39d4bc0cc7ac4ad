"""The one error type that flexsim raises for bad input."""


class FlexsimError(ValueError):
    """Bad input: a one-line message naming the field and the value that is wrong.

    The CLI prints the message and exits with status 2; no output file is written.
    """


def require(condition, message):
    """Raise `FlexsimError(message)` unless `condition` holds."""
    if not condition:
        raise FlexsimError(message)
