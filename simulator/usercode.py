"""Users' code named as ``SOURCE:NAME``: a Python file (``models.py``, ``path/to/policy.py``) or an importable module
(``mypkg.models``), and a name in it.

Shared by users' models (`simulator.models.user`: ``NAME=SOURCE:CALLABLE``) and users' policies
(`simulator.policies.custom_function`: ``--custom-policy FILE.py:FUNCTION``). Loading runs the user's code; any
failure of it is one `FlexsimError` naming what was loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from simulator.errors import FlexsimError, exception_line, is_model_failure, require

#: The prefix of the module names under which users' files are loaded.
FILE_MODULE = "flexsim_user_code_"
#: flexsim's own package: its modules stay imported even where a user's code lies beside it (in a checkout).
OWN_PACKAGE = __name__.split(".")[0]


def split_spec(text) -> tuple[str, str] | None:
    """``SOURCE:NAME`` as ``(SOURCE, NAME)`` (split at the last colon, so that a Windows path keeps its drive); None
    where `text` is not of that form: not a string, no SOURCE, or NAME not a Python identifier."""
    if not isinstance(text, str):
        return None
    source, _, name = text.rpartition(":")
    return (source, name) if source.strip() and name.isidentifier() else None


def is_file(source: str) -> bool:
    """Whether SOURCE names a Python file (``*.py`` or a path) rather than an importable module."""
    return source.endswith(".py") or "/" in source or "\\" in source


@contextmanager
def loaded(source: str, label: str):
    """The Python module `source` names, loaded anew: a file (``*.py`` or a path) or an importable module.
    Its folder (a file's; the current folder for a module) is on the import path until the block ends; then the
    modules it imported from that folder (`is_sibling`) are removed from ``sys.modules``, so that the next source's
    siblings of the same name are its own. `label` (``model mynet``) begins every error message."""
    as_file = is_file(source)
    path = Path(source)
    require(not as_file or path.exists(), f"{label}: file {source} does not exist")
    require(not as_file or path.is_file(), f"{label}: {source} is not a regular file")
    folder = str(path.resolve().parent) if as_file else os.getcwd()
    before, argv = set(sys.modules), sys.argv
    sys.path.insert(0, folder)
    sys.argv = [source]             # as `python models.py` would see it: a module-level argparse gets no flexsim flags
    try:
        yield guarded(label, f"importing {source}", exec_file if as_file else importlib.import_module,
                      path if as_file else source)
    finally:
        sys.argv = argv
        if folder in sys.path:
            sys.path.remove(folder)
        for key in set(sys.modules) - before:
            if key.startswith(FILE_MODULE) or (is_sibling(key, folder) and key.split(".")[0] != OWN_PACKAGE):
                _without_disk_cache(sys.modules.pop(key))


def attribute(module, source: str, name: str, label: str):
    """`name` of the loaded `module` (`loaded`); FlexsimError beginning with `label` where `source` has none."""
    value = getattr(module, name, None)
    require(value is not None, f"{label}: {source} has no {name!r}")
    return value


def _without_disk_cache(module) -> None:
    """Compile the Numba functions of `module`, which is leaving ``sys.modules``, without Numba's disk cache: cached
    code records its module's name, which no later process can import (a file's is new in every process), so the
    next process would fail to load it, and its entries would break the user's own imports of the same file."""
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    for value in list(vars(module).values()):
        if isinstance(value, CPUDispatcher):
            value._cache = NullCache()


def is_sibling(key: str, folder: str) -> bool:
    """Whether module `key` was loaded from `folder` itself: a ``.py`` file or a package directly in it (not a package
    that merely lies below it, as in a virtual environment's site-packages there)."""
    top = key.split(".")[0]
    return os.path.isfile(os.path.join(folder, f"{top}.py")) or os.path.isfile(os.path.join(folder, top,
                                                                                             "__init__.py"))


def exec_file(path: Path):
    """Import the Python file `path` as a module (registered in ``sys.modules`` while it runs, as an import would:
    dataclasses and pickling look their module up there)."""
    key = f"{FILE_MODULE}{len(sys.modules)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None:                            # no loader for its suffix: not Python source
        raise ImportError(f"{path} is not a Python source file (a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def guarded(label: str, what: str, call, *args):
    """``call(*args)``, the user's code: any failure (an exception, or the code exiting) is a FlexsimError beginning
    with `label` and naming `what` was being done."""
    try:
        return call(*args)
    except BaseException as exc:  # noqa: BLE001 -- the user's code: any failure (or exit) is named, on one line
        if not is_model_failure(exc):
            raise
        verb = "exited" if isinstance(exc, SystemExit) else "failed"
        raise FlexsimError(f"{label}: {what} {verb} ({exception_line(exc)})") from None
