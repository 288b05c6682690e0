"""accelc.data: seeded random inputs, safe .npy loading, the digits dataset shaped for a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelc.data import load_dataset, load_npy, random_inputs
from accelc.errors import AccelcError
from accelc.spec import TensorSpec

IMAGE = [TensorSpec("x", (1, 1, 8, 8))]
FLAT = [TensorSpec("x", (1, 64), layout="NC")]


def test_random_inputs_are_seeded_and_shaped() -> None:
    specs = [TensorSpec("a", (1, 3, 4, 4)), TensorSpec("b", (7, 5), layout="NC")]
    a1, b1 = random_inputs(specs, 6, seed=3)
    a2, b2 = random_inputs(specs, 6, seed=3)
    (a3, _) = random_inputs(specs, 6, seed=4)
    assert a1.shape == (6, 3, 4, 4) and b1.shape == (6, 5)
    assert a1.dtype == np.float32 and b1.dtype == np.float32
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(a1, a3)
    assert abs(float(a1.mean())) < 0.5 and 0.5 < float(a1.std()) < 1.5  # standard normal
    np.testing.assert_array_equal(random_inputs(specs, 6)[0], random_inputs(specs, 6, seed=0)[0])


def test_load_npy_reads_numbers_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(6, dtype=np.int64).reshape(2, 3))
    x = load_npy(path)
    assert x.dtype == np.float32 and x.shape == (2, 3)
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))
    assert load_npy(str(path)).shape == (2, 3)


def test_load_npy_refuses_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(AccelcError, match="not a plain .npy array") as info:
        load_npy(path)
    assert "\n" not in str(info.value)


def test_load_npy_refuses_strings(tmp_path: Path) -> None:
    path = tmp_path / "s.npy"
    np.save(path, np.array(["a", "bc"]))
    with pytest.raises(AccelcError, match="expected numbers"):
        load_npy(path)


def test_load_npy_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(AccelcError, match="no such data file"):
        load_npy(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"this is not numpy")
    with pytest.raises(AccelcError, match=str(bad)):
        load_npy(bad)


def test_digits_test_split_for_an_image_model() -> None:
    x, y = load_dataset("digits", IMAGE)
    assert x.shape == (450, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (450,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(10))
    x2, y2 = load_dataset("digits", IMAGE)
    np.testing.assert_array_equal(x, x2)  # the split is fixed
    np.testing.assert_array_equal(y, y2)


def test_digits_reshaped_for_a_64_feature_model() -> None:
    x_img, _ = load_dataset("digits", IMAGE)
    x, y = load_dataset("digits", FLAT)
    assert x.shape == (450, 64) and y.shape == (450,)
    np.testing.assert_array_equal(x, x_img.reshape(450, 64))


def test_digits_train_split_is_disjoint_in_size() -> None:
    x, y = load_dataset("digits", IMAGE, split="train")
    assert x.shape == (1797 - 450, 1, 8, 8) and len(y) == len(x)


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (1, 10), (1, 1, 28, 28)])
def test_digits_refused_for_a_wrong_shape_model(shape: tuple[int, ...]) -> None:
    with pytest.raises(AccelcError, match=r"'digits'.*1x8x8.*'x'"):
        load_dataset("digits", [TensorSpec("x", shape)])


def test_unknown_dataset() -> None:
    with pytest.raises(AccelcError, match="unknown dataset 'mnist'; available: digits"):
        load_dataset("mnist", IMAGE)
