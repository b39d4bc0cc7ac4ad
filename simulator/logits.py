"""Logit caches: the cached outputs of real models that a simulation replays.

A cache is an ``.npz`` file with

- ``logits``: float32 or float16 ``[member, sample, class]``,
- ``labels``: integer ``[sample]``,
- optionally ``cost_scale``: float ``[member, sample]``, the fraction (> 0) of a member's profiled cost that
  the input needs (networks that skip layers or channels per input),
- optionally ``model_names``: strings ``[member]``, or ``widths`` (then the names are ``fmnist-cnn-w{width}``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, require
from simulator.io import read_npz

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Built-in caches: name -> (file, member model names).
_FMNIST_MODELS = tuple(["fmnist-cnn-w32"] * 6 + ["fmnist-cnn-w8", "fmnist-cnn-w64"])
#: The CPU-trained ensemble the real runner serves (`data/fmnist_cpu.md`); the file names its members' models too.
_FMNIST_CPU_MODELS = tuple(["fmnist-cnn-w8"] * 4 + ["fmnist-cnn-w16", "fmnist-cnn-w32"])
BUILTIN_CACHES = {
    "fmnist": ("fmnist_logits_test.npz", _FMNIST_MODELS),
    "fmnist-test": ("fmnist_logits_test.npz", _FMNIST_MODELS),
    "fmnist-train": ("fmnist_logits_train.npz", _FMNIST_MODELS),
    "fmnist-cpu": ("fmnist_cpu_logits_test.npz", _FMNIST_CPU_MODELS),
}


@dataclass(frozen=True, kw_only=True, eq=False)
class LogitCache:
    """Cached logits of an ensemble's members on a labelled set of samples.

    Attributes
    ----------
    logits : ndarray, shape (n_members, n_samples, n_classes)
        float32 or float16 logits.
    labels : ndarray of int64, shape (n_samples,)
    cost_scale : ndarray of float64, shape (n_members, n_samples), or None
        Per-input effort: the fraction of the member's profiled cost this input needs.
    model_names : tuple of str, or None
        The profile model name of each member, where the cache knows it.
    source : str
        Where the cache came from (a path or a built-in name).

    The arrays are held as read-only views of the ones given (no copy): write to a new cache, not to these.
    """

    logits: np.ndarray
    labels: np.ndarray
    cost_scale: np.ndarray | None = None
    model_names: tuple[str, ...] | None = None
    source: str = "<memory>"

    def __post_init__(self):
        _validate(self)
        for name in ("logits", "labels", "cost_scale"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))

    @property
    def n_members(self) -> int:
        return self.logits.shape[0]

    @property
    def n_samples(self) -> int:
        return self.logits.shape[1]

    @property
    def n_classes(self) -> int:
        return self.logits.shape[2]


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
    """A read-only view of `array`: what was checked cannot be changed through the cache (the caller's own
    array, which the view shares, stays writeable)."""
    if array is None:
        return None
    view = array.view()
    view.flags.writeable = False
    return view


def _validate(cache: LogitCache) -> None:
    """Check shapes, dtypes and values; raise FlexsimError naming the array at fault."""
    logits, labels, src = cache.logits, cache.labels, cache.source
    for name in ("logits", "labels", "cost_scale"):
        require(not isinstance(getattr(cache, name), np.ma.MaskedArray), f"logit cache {src}: {name} is a masked "
                "array, whose masked entries the simulation would read as they are: give a plain array")
    require(isinstance(logits, np.ndarray) and logits.ndim == 3,
            f"logit cache {src}: logits must be a 3-D array [member, sample, class], got shape {np.shape(logits)}")
    require(logits.dtype in (np.float16, np.float32, np.float64),
            f"logit cache {src}: logits must be float16/float32/float64, got {logits.dtype}")
    require(min(logits.shape) > 0, f"logit cache {src}: logits shape {logits.shape} has an empty axis")
    require(logits.shape[2] >= 2, f"logit cache {src}: logits need at least 2 classes, got {logits.shape[2]}")
    bad = ~np.isfinite(logits)
    if bad.any():
        m, s, c = np.argwhere(bad)[0]
        raise FlexsimError(f"logit cache {src}: logits[{m}, {s}, {c}] is {logits[m, s, c]} (NaN/inf logits)")
    require(isinstance(labels, np.ndarray) and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer),
            f"logit cache {src}: labels must be a 1-D integer array, got {getattr(labels, 'dtype', type(labels))} "
            f"shape {np.shape(labels)}")
    require(labels.shape[0] == logits.shape[1],
            f"logit cache {src}: labels has {labels.shape[0]} samples but logits has {logits.shape[1]}")
    out = (labels < 0) | (labels >= logits.shape[2])
    if out.any():
        i = int(np.argmax(out))
        raise FlexsimError(f"logit cache {src}: labels[{i}] = {labels[i]} is outside [0, {logits.shape[2]})")
    _validate_cost_scale(cache.cost_scale, logits.shape[:2], src)
    names = cache.model_names
    require(names is None or (isinstance(names, tuple) and all(isinstance(n, str) for n in names)),
            f"logit cache {src}: model_names must be a tuple of names (strings), got {names!r:.80}")
    empty = [i for i, n in enumerate(names or ()) if not n.strip()]
    require(not empty, f"logit cache {src}: model_names[{empty[0] if empty else 0}] is empty (a profile model name)")
    require(names is None or len(names) == logits.shape[0],
            f"logit cache {src}: the model names (model_names or widths) have "
            f"{0 if names is None else len(names)} entries for {logits.shape[0]} members")


#: Largest cost scale of a (member, sample): a stage a million times its profiled cost.
MAX_COST_SCALE = 1e6


def _validate_cost_scale(scale, shape, src) -> None:
    if scale is None:
        return
    require(isinstance(scale, np.ndarray), f"logit cache {src}: cost_scale must be a NumPy array [member, sample], "
            f"got {type(scale).__name__}")
    require(scale.shape == tuple(shape),
            f"logit cache {src}: cost_scale must have shape {tuple(shape)} [member, sample], got {np.shape(scale)}")
    require(np.issubdtype(scale.dtype, np.number) and not np.iscomplexobj(scale),
            f"logit cache {src}: cost_scale must be real numbers, got {scale.dtype}")
    bad = ~(np.isfinite(scale) & (scale > 0) & (scale <= MAX_COST_SCALE))
    if bad.any():
        m, s = np.argwhere(bad)[0]
        raise FlexsimError(f"logit cache {src}: cost_scale[{m}, {s}] = {scale[m, s]} (must be > 0 and <= "
                           f"{MAX_COST_SCALE:g})")


def load_cache(name_or_path: str | Path) -> LogitCache:
    """Load a logit cache from a built-in name (``fmnist``, ``fmnist-train``) or an ``.npz`` path."""
    key = str(name_or_path)
    require(key != "", "logits: an empty name")
    if key in BUILTIN_CACHES:
        file, names = BUILTIN_CACHES[key]
        return _load_npz(DATA_DIR / file, source=key, default_names=names)
    return _load_npz(check_cache_file(key), source=key, default_names=None)


def cache_file(name_or_path: str | Path) -> Path:
    """The file a cache name or path stands for, resolved (a built-in name's file in the package's data)."""
    key = str(name_or_path)
    return (DATA_DIR / BUILTIN_CACHES[key][0] if key in BUILTIN_CACHES else Path(key)).resolve()


def as_cache(cache) -> LogitCache:
    """`cache` itself where it is a `LogitCache`, else the cache it names (`load_cache`: a built-in name or a
    path)."""
    if isinstance(cache, LogitCache):
        return cache
    require(isinstance(cache, (str, os.PathLike)), f"invalid cache {cache!r:.40}: a LogitCache, or a cache name or "
            "path")
    return load_cache(cache)


def check_cache_file(key: str) -> Path:
    """The path of the cache file `key` (not a built-in name), or FlexsimError for an unknown name or a missing
    file; the file is not read."""
    path = Path(key)
    require(path.suffix == ".npz" or path.exists(),
            f"logits: unknown cache name {key!r} (built-in: {', '.join(BUILTIN_CACHES)}; or a path to an .npz)")
    require(path.exists(), f"logits: file {key} does not exist")
    return path


def _load_npz(path: Path, *, source: str, default_names) -> LogitCache:
    arrays = read_npz(path, "logits")
    for key in ("logits", "labels"):
        names = sorted(arrays)
        require(key in arrays, f"logit cache {source}: the file has no array {key!r} (it has {names[:5]}"
                f"{f' and {len(names) - 5} more' if len(names) > 5 else ''})")
    scale, labels = arrays.get("cost_scale"), arrays["labels"]
    real = scale is not None and np.issubdtype(scale.dtype, np.number) and not np.iscomplexobj(scale)
    if np.issubdtype(labels.dtype, np.unsignedinteger) and labels.size and labels.max() > np.iinfo(np.int64).max:
        i = int(np.argmax(labels > np.iinfo(np.int64).max))
        raise FlexsimError(f"logit cache {source}: labels[{i}] = {labels[i]} is not a class index")
    return LogitCache(
        logits=arrays["logits"],
        labels=labels.astype(np.int64) if np.issubdtype(labels.dtype, np.integer) else labels,
        cost_scale=scale.astype(np.float64) if real else scale,     # anything else: refused by _validate_cost_scale
        model_names=_model_names(arrays, default_names),
        source=source,
    )


def _model_names(arrays: dict, default_names) -> tuple[str, ...] | None:
    if "model_names" in arrays:
        names = arrays["model_names"]
        require(names.ndim == 1 and names.dtype.kind in "US", f"logits: model_names must be a 1-D array of names "
                f"(strings), got {names.dtype} of shape {names.shape}")
        return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names)
    if "widths" in arrays:
        widths = arrays["widths"]
        ok = (widths.ndim == 1 and np.issubdtype(widths.dtype, np.number) and not np.iscomplexobj(widths)
              and bool(np.all(np.isfinite(widths) & (widths >= 1) & (widths == np.round(widths)))))
        require(ok, f"logits: widths must be a 1-D array of whole numbers >= 1 (the members' widths), got "
                    f"{widths.tolist() if widths.size <= 8 else widths.dtype}")
        return tuple(f"fmnist-cnn-w{int(w)}" for w in widths)
    return default_names


def save_cache(path: str | Path, cache: LogitCache) -> None:
    """Write `cache` to `path` atomically in the ``.npz`` format that `load_cache` reads."""
    from simulator.io import atomic_path

    require(isinstance(cache, LogitCache), f"save_cache: expected a LogitCache, got {type(cache).__name__}")
    arrays = {"logits": cache.logits, "labels": cache.labels}
    if cache.cost_scale is not None:
        arrays["cost_scale"] = cache.cost_scale
    if cache.model_names is not None:
        arrays["model_names"] = np.array(cache.model_names)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
