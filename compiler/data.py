"""Input data for verification and calibration: .npy files, seeded random inputs, scikit-learn digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelc.errors import AccelcError
from accelc.spec import TensorSpec

DATASETS = ("digits",)


def random_inputs(specs: list[TensorSpec], n: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded standard-normal inputs: wider than most real inputs, so ranges derived from them are safe."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, *s.shape[1:])).astype(np.float32) for s in specs]


def load_npy(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise AccelcError(f"no such data file: {path}")
    try:
        arr = np.load(path, allow_pickle=False)  # never unpickle user data
    except ValueError as e:
        raise AccelcError(f"{path} is not a plain .npy array ({e}); save it with numpy.save") from e
    except Exception as e:
        raise AccelcError(f"{path} could not be read as .npy: {type(e).__name__}: {e}") from e
    if not np.issubdtype(arr.dtype, np.number):
        raise AccelcError(f"{path} holds {arr.dtype} values; expected numbers")
    return arr.astype(np.float32)


def load_dataset(name: str, specs: list[TensorSpec], split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """A named dataset shaped for the model's input: 'digits' is scikit-learn's 8x8 load_digits (/16)."""
    if name != "digits":
        raise AccelcError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x, y = (x_te, y_te) if split == "test" else (x_tr, y_tr)
    sample = tuple(specs[0].shape[1:])
    if x.shape[1:] != sample:
        if int(np.prod(sample)) == 64:
            x = x.reshape((len(x), *sample))  # e.g. an MLP taking 64 flat features
        else:
            raise AccelcError(f"dataset 'digits' has 1x8x8 images; the model's input '{specs[0].name}' "
                              f"expects {sample}")
    return x, y
