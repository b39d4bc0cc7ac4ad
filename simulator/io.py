"""File input and output that fails cleanly: a file appears whole or not at all, and an unusable path gives a
one-line `FlexsimError` naming it instead of an OSError traceback."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, require


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@contextmanager
def naming(path: str | Path):
    """Turn an OSError inside the block (no such folder, permission denied, a directory in the way, disk full) into a
    FlexsimError naming `path`."""
    try:
        yield
    except OSError as exc:
        raise FlexsimError(f"cannot write {path}: {_reason(exc)}") from None


def _temp_beside(path: Path) -> Path:
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


@contextmanager
def atomic_paths(paths, stale=()):
    """Yield temporary paths beside each of `paths` (a list); on success rename them all and remove the files of
    `stale` (an earlier run's that this one does not write), on error remove the temporary ones, so that either every
    file is replaced (and every stale one gone) or none is. An OSError becomes a FlexsimError naming the path (the
    folder for one raised by the block while it writes several files: name them with `naming` there)."""
    paths, stale = [_write_target(_usable_path(p, "path")) for p in paths], [Path(p) for p in stale]
    for path in stale:
        require(not path.exists() or path.is_symlink() or path.is_file(),
                f"cannot remove {path}, left by an earlier run: it {NOT_REGULAR}")
    if not paths:  # nothing to write (e.g. a report printed only)
        yield []
        _replace_all([], [], stale)
        return
    tmps = []
    try:
        for path in paths:
            tmps.append(_temp_beside(path))
        with naming(paths[0] if len(paths) == 1 else paths[0].parent), _targets_named(tmps, paths):
            yield tmps
        _replace_all(tmps, paths, stale)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextmanager
def _targets_named(tmps: list[Path], paths: list[Path]):
    """Re-raise a FlexsimError of the block that names a temporary file of `tmps` (a writer checking what it wrote, or
    writing through `write_text_atomic`) with the file it stands for in `paths` instead: the user never gave the
    temporary name."""
    try:
        yield
    except FlexsimError as exc:
        text = str(exc)
        for tmp, path in zip(tmps, paths):
            text = text.replace(str(tmp), str(path)).replace(tmp.name, path.name)
        if text == str(exc):
            raise
        raise FlexsimError(text) from None


def _write_target(path: Path) -> Path:
    """The file that writing `path` replaces: the one a symbolic link points to (the link stays a link), else `path`
    itself; FlexsimError where that exists and is neither a regular file nor a directory (a device such as
    /dev/null, a FIFO, a socket: a file would be put in its place)."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    require(not _special(target), f"cannot write {path}: {'it' if target == path else target} {NOT_REGULAR}")
    return target


NOT_REGULAR = "is not a regular file (a device, a FIFO or a socket)"


def _special(path: Path) -> bool:
    """Whether `path` (a link followed) exists and is neither a regular file nor a directory: a device, a FIFO, a
    socket, which a write must not replace."""
    return path.exists() and not path.is_file() and not path.is_dir()


def _replaceable(path: Path) -> bool:
    """Whether a staged entry may replace `path` (`_move_all_in`): not a symbolic link (replaced, the link would be
    gone rather than written through) and not `_special`."""
    return not path.is_symlink() and not _special(path)


def _replace_all(tmps: list[Path], paths: list[Path], stale: list[Path] = ()) -> None:
    """Rename every temporary file onto its path and move every `stale` file away, or (a rename failing part-way: a
    directory in the way, a full disk) none: the files already replaced or moved get their earlier content back and
    the new ones are removed."""
    done = []                                   # (path, its earlier content moved aside, or None)
    try:
        for tmp, path in zip(tmps, paths):
            with naming(path):
                earlier = _temp_beside(path) if path.is_file() else None
                if earlier is not None:
                    os.replace(path, earlier)
                done.append((path, earlier))
                os.replace(tmp, path)
        for path in stale:
            if path.exists() or path.is_symlink():
                with naming(path):
                    aside = _temp_beside(path)
                    try:
                        os.replace(path, aside)
                    except BaseException:
                        aside.unlink()
                        raise
                    done.append((path, aside))           # restored on failure, as an earlier content
    except BaseException:
        for path, earlier in reversed(done):
            if earlier is not None:
                os.replace(earlier, path)
            elif path.is_file():
                path.unlink()
        raise
    for _, earlier in done:
        if earlier is not None:
            earlier.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error remove it (an OSError becomes
    a FlexsimError naming `path`)."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextmanager
def staged_dir(path: str | Path):
    """Yield a new empty folder beside directory `path`; on success move each of its entries into `path` (created
    where missing), replacing an entry of the same name, on error remove it: a command that fails or is stopped
    leaves `path` as it was. Entries of `path` the block did not write stay. An OSError becomes a FlexsimError
    naming `path` (or the entry that could not be replaced: the entries are replaced all or none)."""
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)    # staged beside its target
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
        os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
        with naming(path):
            path.mkdir(exist_ok=True)
        _move_all_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_all_in(staging: Path, path: Path) -> None:
    """Move every entry of `staging` into `path`, replacing entries of the same names, or (a move failing part-way:
    a file where a folder goes, a full disk) none: the entries replaced so far are put back. An entry of `path` to
    be replaced that is a symbolic link, a device, a FIFO or a socket is refused first (replaced, it would be gone,
    not written through)."""
    for entry in staging.iterdir():
        target = path / entry.name
        require(_replaceable(target), f"cannot write {target}: it is a symbolic link, a device, a FIFO or a socket, "
                "which this command replaces with its own file or folder rather than writing through (remove it)")
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".replaced", dir=path))
    done = []                                   # (target, its earlier entry moved aside, or None)
    try:
        for entry in sorted(staging.iterdir()):
            target = path / entry.name
            with naming(target):
                earlier = aside / entry.name if target.exists() or target.is_symlink() else None
                if earlier is not None:
                    os.replace(target, earlier)
                done.append((target, earlier))
                os.replace(entry, target)
    except BaseException:
        for target, earlier in reversed(done):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            if earlier is not None:
                os.replace(earlier, target)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def json_text(obj) -> str:
    """`obj` as indented standard JSON text (RFC 8259, which every parser reads), ending in a newline: NumPy numbers
    and arrays as their Python values, a number that is not finite as null (JSON has none: an open-ended bucket's
    upper edge, the throughput of a run that took no time); FlexsimError naming the type of a value that JSON
    cannot hold."""
    return json.dumps(finite_json(obj), indent=2, allow_nan=False, default=_unwritable) + "\n"


def non_finite_field(value, where: str = "") -> str | None:
    """The first place in `value` (dicts, lists, tuples, NumPy arrays) holding a NaN or infinite float, as
    ``a.b[2]``, or None where there is none."""
    if isinstance(value, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        bad = isinstance(value, (float, np.floating)) and not math.isfinite(value)
        return where if bad else None
    return next((found for key, v in items if (found := non_finite_field(v, key)) is not None), None)


def finite_json(value):
    """`value` with every NaN or infinite float, in its dicts, lists, tuples and NumPy arrays, replaced by None."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    if isinstance(value, np.generic):
        return finite_json(python_scalar(value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def python_scalar(value: np.generic):
    """The Python number (or bool, str) that the NumPy scalar `value` holds; a long double, whose ``item()`` is
    itself, as the nearest float."""
    item = value.item()
    return float(item) if isinstance(item, np.floating) else item


def _unwritable(value):
    """Refuse, by its type, a value that JSON cannot hold (``default`` of `json.dumps`: NumPy values are already
    Python ones, `finite_json`)."""
    raise FlexsimError(f"cannot write a value of type {type(value).__name__} as JSON: {value!r:.60}")


def write_json_atomic(path: str | Path, obj) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json_text(obj))


# ----------------------------------------------------------------------------------------------- checks up front

#: Longest name of one file or folder on the usual file systems (bytes).
NAME_MAX = 255


def _usable_path(path, what: str, folder: bool = False) -> Path:
    """`path` (of a `folder` where true, else of a file) as a Path, or FlexsimError where no file system could take
    it: empty, not a path, a NUL character, a name longer than `NAME_MAX` bytes (which the OS would refuse with a
    raw error further on)."""
    require(isinstance(path, (str, os.PathLike)), f"invalid {what} = {path!r}: not a path")
    text = os.fspath(path)
    require(isinstance(text, str) and "\0" not in text, f"invalid {what} = {text!r}: a path cannot hold a NUL")
    require(text != "", f"invalid {what} = '': an empty path" + (" (write . for the current folder)" if folder else ""))
    for part in Path(text).parts:
        require(len(part.encode()) <= NAME_MAX, f"invalid {what}: the name {part[:40]!r}... is longer than "
                f"{NAME_MAX} bytes")
    return Path(text)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_can_create_in(folder: Path, path: Path, what: str) -> None:
    """FlexsimError unless a file can be created in the existing directory `folder` (tried, and removed)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise FlexsimError(f"invalid {what} = {str(path)!r}: cannot write in {folder} ({_reason(exc)})") from None


def check_output_dir(path: str | Path, what: str = "out") -> Path:
    """Check, before any long computation, that directory `path` exists or can be created, and can be written in.

    Nothing is created. `what` names the option in the error message.
    """
    path = _usable_path(path, what, folder=True)
    require(not path.exists() or path.is_dir(), f"invalid {what} = {str(path)!r}: exists and is not a directory")
    existing = _nearest_existing(path)
    require(existing.is_dir(), f"invalid {what} = {str(path)!r}: {existing} is not a directory")
    _check_can_create_in(existing, path, what)
    return path


def make_output_dir(path: str | Path, what: str = "out") -> Path:
    """Create directory `path` (and its parents) if needed, after `check_output_dir`."""
    path = check_output_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlexsimError(f"invalid {what} = {str(path)!r}: cannot create it ({_reason(exc)})") from None
    return path


@contextmanager
def output_dir(path: str | Path, what: str = "out"):
    """Yield directory `path`, created where missing (`make_output_dir`); where the block fails, the folders this
    created are removed again while they are empty (a full disk must not leave an empty --out behind)."""
    path = check_output_dir(path, what)
    created = [p for p in (path, *path.parents) if not p.exists()]          # deepest first
    made = make_output_dir(path, what)
    try:
        yield made
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def check_output_file(path: str | Path, what: str = "out") -> Path:
    """Check, before any long computation, that file `path` can be written: its folder exists and can be written in,
    and `path` is not a directory."""
    path = _usable_path(path, what)
    _check_file_in_place(path, what)
    folder = path.absolute().parent
    require(folder.is_dir(), f"invalid {what} = {str(path)!r}: folder {path.parent} "
            + ("is not a directory" if folder.exists() else "does not exist"))
    _check_can_create_in(folder, path, what)
    return path


def check_replaceable(folder: Path, names, what: str = "out") -> None:
    """Check, before a long computation, that the entries `names` of `folder` that a staged write
    (`staged_dir`) will replace are not symbolic links, devices, FIFOs or sockets (see `_move_all_in`)."""
    for name in names:
        require(_replaceable(Path(folder) / name), f"invalid {what} = {str(folder)!r}: its {name} is a symbolic "
                "link, a device, a FIFO or a socket, which the run would replace with its own file rather than write "
                "through (remove it)")


def check_spares_inputs(folder: str | Path, names, inputs, what: str = "out") -> None:
    """FlexsimError where a file `names` of output `folder` is one of the command's `inputs` (paths; those that do not
    exist are left out): writing it would replace what the command reads (a run's requests.csv given as its trace)."""
    read = _input_files(inputs)
    clash = [name for name in names if (Path(folder) / name).resolve() in read]
    require(not clash, f"invalid {what} = {str(folder)!r}: its {', '.join(clash)} is an input of this command, "
            "which the output would replace (choose another folder)")


def check_file_spares_inputs(path: str | Path, inputs, what: str = "out") -> None:
    """FlexsimError where output file `path` is one of the command's `inputs` (as `check_spares_inputs`)."""
    require(Path(path).resolve() not in _input_files(inputs), f"invalid {what} = {str(path)!r}: it is an input of "
            "this command, which the output would replace (choose another file)")


def _input_files(inputs) -> set[Path]:
    """The resolved paths of those of `inputs` (paths or None) that are existing files."""
    return {Path(p).resolve() for p in inputs if p is not None and str(p) != "" and Path(p).is_file()}


def check_report_file(path: str | Path, what: str = "report") -> Path:
    """As `check_output_file`, for a file whose folder is created where it is missing (`check_output_dir`)."""
    path = Path(path)
    _check_file_in_place(path, what)
    check_output_dir(path.absolute().parent, f"{what}'s folder")
    return path


def _check_file_in_place(path: Path, what: str) -> None:
    """FlexsimError where the output file `path` exists and is not a regular file (a directory, a device, ...)."""
    require(not path.is_dir(), f"invalid {what} = {str(path)!r}: is a directory, not a file")
    require(not path.exists() or path.is_file(), f"invalid {what} = {str(path)!r}: {NOT_REGULAR}")


# ----------------------------------------------------------------------------------------------- reading

def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of file `path`; FlexsimError (naming `what` and `path`) if it is missing, a directory, unreadable
    or not UTF-8 text."""
    require(os.fspath(path) != "", f"{what}: an empty path")
    path = Path(path)
    require(path.exists(), f"{what}: file {path} does not exist")
    require(not path.is_dir(), f"{what}: {path} is a directory, not a file")
    require(path.is_file(), f"{what}: {path} is not a regular file (a FIFO, a device or a socket)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FlexsimError(f"{what} {path}: not a UTF-8 text file (byte {exc.start} cannot be decoded)") from None
    except OSError as exc:
        raise FlexsimError(f"{what}: cannot read {path} ({_reason(exc)})") from None


#: Parsed files that `parsed_file` keeps (the newest `PARSED_KEEP`), by kind, resolved path, inode, modification
#: and change times and size.
_PARSED: dict = {}
PARSED_KEEP = 16


def parsed_file(path: str | Path, kind: str, parse):
    """``parse(path)``, kept while the file is unchanged (same inode, modification and change times and size; an
    atomic rewrite gets a new inode and change time), so that loading one profile or trace again, as a simulation
    per seed does, parses it once. The value is shared: it must not be mutated (profiles are frozen, traces' arrays
    read-only). A file that cannot be stat'ed is left to `parse`, which names the error."""
    try:
        stat = os.stat(path)
    except OSError:
        return parse(path)
    key = (kind, str(Path(path).resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = parse(path)
        while len(_PARSED) > PARSED_KEEP:
            _PARSED.pop(next(iter(_PARSED)))
    return _PARSED[key]


class _DuplicateKey(ValueError):
    """A JSON object holds a key twice (`_unique_keys`); its argument is the key."""


def _unique_keys(pairs) -> dict:
    """An object's members as a dict; _DuplicateKey where a key appears twice (Python's json keeps the last)."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def read_json(path: str | Path, what: str):
    """The JSON value of file `path` (`read_text`); FlexsimError naming `what` and `path` where it is not JSON, or
    where one object holds a key twice (which JSON parsers read differently: Python's keeps the last)."""
    text = read_text(path, what)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise FlexsimError(f"{what}: {path} is not valid JSON ({exc})") from None
    except _DuplicateKey as exc:
        raise FlexsimError(f"{what}: {path} holds the key {exc.args[0]!r} twice in one object") from None
    except RecursionError:
        raise FlexsimError(f"{what}: {path} is not valid JSON (nested too deeply)") from None


def read_npz(path: str | Path, what: str) -> dict:
    """The arrays of the ``.npz`` file `path` by name (no pickled objects); FlexsimError naming `what` and `path` if it
    is missing or is not an .npz archive."""
    require(os.fspath(path) != "", f"{what}: an empty path")
    path = Path(path)
    require(path.exists(), f"{what}: file {path} does not exist")
    require(not path.is_dir(), f"{what}: cannot read {path}: it is a directory")
    require(path.is_file() and zipfile.is_zipfile(path), f"{what}: cannot read {path}: it is not an .npz file (not a "
            "zip archive)")
    try:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FlexsimError(f"{what}: cannot read {path} as an .npz file ({exc})") from None
