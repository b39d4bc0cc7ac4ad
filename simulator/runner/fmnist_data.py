"""Fashion-MNIST as Debian's package ``dataset-fashion-mnist`` installs it (IDX files, gzip-compressed).

``apt-get install -y dataset-fashion-mnist`` puts ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` under `DATASET_DIR`. Only training needs it: the
runner serves the test images shipped with the trained ensemble (`simulator.runner.bundle`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from simulator.errors import require

DATASET_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = {"train": "train", "test": "t10k"}
#: Mean and standard deviation of the training images' pixels (scaled to [0, 1]).
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


def load_split(split: str, root: str | Path = DATASET_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 ``[n, 28, 28]``) and labels (int64 ``[n]``) of the ``train`` or ``test`` split."""
    require(split in SPLITS, f"invalid split = {split!r}: must be one of {', '.join(SPLITS)}")
    root = Path(root)
    prefix = SPLITS[split]
    images = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", ndim=1).astype(np.int64)
    require(images.shape[0] == labels.shape[0],
            f"fashion-mnist {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array of `ndim` dimensions."""
    require(path.exists(), f"fashion-mnist: file {path} does not exist (install it with "
            "`apt-get install -y dataset-fashion-mnist`)")
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    require(magic == 0x0800 + ndim, f"fashion-mnist: {path} is not an unsigned-byte IDX file of {ndim} dimensions")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    require(len(data) == offset + int(np.prod(shape)), f"fashion-mnist: {path} is truncated")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
