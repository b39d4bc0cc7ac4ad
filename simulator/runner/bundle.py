"""The trained ensemble that the real runner loads: member weights and the test inputs they serve.

Two ``.npz`` files (no pickles), next to the logit cache of the same members on the same inputs:

- members (``fmnist_cpu_members.npz``): ``widths``, ``seeds``, ``model_names``, ``pixel_mean``, ``pixel_std``,
  ``test_accuracy`` (each member on the full test split) and, per member ``i``, its state-dict tensors as
  ``m{i}/{name}`` (float32; BatchNorm's ``num_batches_tracked`` as int64);
- samples (``fmnist_cpu_samples.npz``): ``images`` uint8 ``[n, 28, 28]``, ``labels`` int64 ``[n]`` and
  ``test_index`` (the position of each image in the Fashion-MNIST test split).

The shipped files are built by ``experiments/train_fmnist.py``; the logit cache beside them
(``fmnist_cpu_logits_test.npz``) holds the members' logits on exactly these samples, computed by the runner's own
batch-1 forward pass, so that live runs and replays of the cache take the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import require
from simulator.io import atomic_path, read_npz
from simulator.logits import DATA_DIR

MEMBERS_PATH = DATA_DIR / "fmnist_cpu_members.npz"
SAMPLES_PATH = DATA_DIR / "fmnist_cpu_samples.npz"
CACHE_PATH = DATA_DIR / "fmnist_cpu_logits_test.npz"


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainedMembers:
    """Weights of an ensemble of `FashionCNN` members, as NumPy arrays.

    Attributes
    ----------
    widths, seeds : ndarray of int64, shape (n_members,)
    model_names : tuple of str
        Profile model name of each member (``fmnist-cnn-w{width}``).
    pixel_mean, pixel_std : float
        Input normalisation: ``(pixel / 255 - mean) / std``.
    test_accuracy : ndarray of float64, shape (n_members,)
    states : tuple of dict
        Each member's state dict (name -> array).
    source : str
    """

    widths: np.ndarray
    seeds: np.ndarray
    model_names: tuple
    pixel_mean: float
    pixel_std: float
    test_accuracy: np.ndarray
    states: tuple
    source: str = "<memory>"

    @property
    def n_members(self) -> int:
        return len(self.states)


@dataclass(frozen=True, kw_only=True, eq=False)
class SampleSet:
    """Labelled test images that requests are served with (sample ``s`` = row ``s``)."""

    images: np.ndarray
    labels: np.ndarray
    test_index: np.ndarray
    source: str = "<memory>"

    @property
    def n_samples(self) -> int:
        return self.images.shape[0]


def _read_npz(path: str | Path, what: str) -> dict:
    require(Path(path).exists(), f"runner: {what} file {path} does not exist")
    return read_npz(path, f"runner: {what}")


def _need(arrays: dict, keys, what: str, path) -> None:
    missing = [k for k in keys if k not in arrays]
    require(not missing, f"runner: {what} file {path} has no array(s) {', '.join(missing)}")


def load_members(path: str | Path = MEMBERS_PATH) -> TrainedMembers:
    """Read a members file written by `save_members`."""
    arrays = _read_npz(path, "weights")
    _need(arrays, ("widths", "seeds", "model_names", "pixel_mean", "pixel_std", "test_accuracy"), "weights", path)
    n = arrays["widths"].shape[0]
    widths = arrays["widths"]
    require(widths.ndim == 1 and np.issubdtype(widths.dtype, np.integer) and bool(np.all(widths >= 1)),
            f"runner: weights file {path}: widths must be integers >= 1 (one per member), got {widths.tolist()!r:.80}")
    states = tuple(_member_state(arrays, i, path) for i in range(n))
    mean, std = float(arrays["pixel_mean"]), float(arrays["pixel_std"])
    require(np.isfinite(mean) and np.isfinite(std) and std > 0,
            f"runner: weights file {path}: invalid pixel_mean = {mean}, pixel_std = {std}: must be finite, std > 0")
    return TrainedMembers(widths=arrays["widths"].astype(np.int64), seeds=arrays["seeds"].astype(np.int64),
                          model_names=tuple(str(s) for s in arrays["model_names"]),
                          pixel_mean=mean, pixel_std=std,
                          test_accuracy=arrays["test_accuracy"].astype(np.float64), states=states, source=str(path))


def _member_state(arrays: dict, i: int, path) -> dict:
    prefix = f"m{i}/"
    state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    require(state, f"runner: weights file {path} has no tensors for member {i}")
    for name, value in state.items():
        require(not np.issubdtype(value.dtype, np.floating) or np.isfinite(value).all(),
                f"runner: weights file {path}: member {i}'s {name} has NaN or infinite values")
    return state


def save_members(path: str | Path, members: TrainedMembers) -> None:
    """Write `members` to `path` atomically."""
    arrays = {"widths": members.widths, "seeds": members.seeds, "model_names": np.array(members.model_names),
              "pixel_mean": np.float64(members.pixel_mean), "pixel_std": np.float64(members.pixel_std),
              "test_accuracy": members.test_accuracy}
    for i, state in enumerate(members.states):
        arrays.update({f"m{i}/{name}": value for name, value in state.items()})
    _write_npz(path, arrays)


def load_samples(path: str | Path = SAMPLES_PATH) -> SampleSet:
    """Read a samples file written by `save_samples`."""
    arrays = _read_npz(path, "samples")
    _need(arrays, ("images", "labels", "test_index"), "samples", path)
    images, labels = arrays["images"], arrays["labels"]
    require(images.ndim == 3 and images.dtype == np.uint8 and labels.shape == images.shape[:1],
            f"runner: samples file {path}: images must be uint8 [n, height, width] with one label each")
    return SampleSet(images=images, labels=labels.astype(np.int64), test_index=arrays["test_index"],
                     source=str(path))


def save_samples(path: str | Path, samples: SampleSet) -> None:
    """Write `samples` to `path` atomically."""
    _write_npz(path, {"images": samples.images, "labels": samples.labels, "test_index": samples.test_index})


def _write_npz(path: str | Path, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
