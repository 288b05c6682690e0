"""The bundled example models: definitions, the committed files, and that they are reproducible."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# `examples` is not part of the installed package; it is imported from the checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples import make_seed_models  # noqa: E402
from examples.digits import train_digits  # noqa: E402
from examples.models import MLP, DigitsCNN, LeNet, digits_split  # noqa: E402

# The example files are TorchScript on purpose (a format users bring); its deprecation is not ours to test.
pytestmark = pytest.mark.filterwarnings("ignore:.torch.jit.load. is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def seed_models() -> dict[str, torch.nn.Module]:
    return make_seed_models.build_seed_models()


@pytest.mark.parametrize(
    ("cls", "shape"),
    [(MLP, (3, 1, 28, 28)), (MLP, (3, 784)), (LeNet, (3, 1, 28, 28)), (DigitsCNN, (3, 1, 8, 8))],
)
def test_forward_shape(cls: type[torch.nn.Module], shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        assert cls().eval()(torch.rand(shape)).shape == (3, 10)


def test_lenet_outputs_log_probabilities(seed_models: dict[str, torch.nn.Module]) -> None:
    with torch.no_grad():
        out = seed_models["lenet"](torch.rand(4, 1, 28, 28))
    torch.testing.assert_close(out.logsumexp(dim=1), torch.zeros(4), atol=1e-5, rtol=0)


def test_build_seed_models_is_deterministic(seed_models: dict[str, torch.nn.Module]) -> None:
    again = make_seed_models.build_seed_models()
    for name, model in seed_models.items():
        for (k, a), b in zip(model.state_dict().items(), again[name].state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{name}.{k}"


@pytest.mark.parametrize(("name", "path"), [("mlp", "mlp/mlp.pt"), ("lenet", "lenet/lenet.pt")])
def test_seed_torchscript_matches_fresh_model(
    seed_models: dict[str, torch.nn.Module], name: str, path: str
) -> None:
    loaded = torch.jit.load(str(ROOT / "examples" / path))
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), seed_models[name](x))


def test_seed_onnx_matches_torch_with_dynamic_batch(seed_models: dict[str, torch.nn.Module]) -> None:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(make_seed_models.MLP_ONNX), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["output"]
    for batch in (1, 7):
        x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
        (got,) = sess.run(None, {"input": x})
        with torch.no_grad():
            want = seed_models["mlp"](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lenet_file_size() -> None:
    # ~431k float32 parameters: a much smaller file means the wrong architecture was saved.
    size = make_seed_models.LENET_PT.stat().st_size
    assert 1_600_000 < size < 1_900_000


def test_digits_split_shapes_and_ranges() -> None:
    x_train, y_train, x_test, y_test = digits_split(0)
    assert x_train.dtype == x_test.dtype == np.float32 and y_train.dtype == y_test.dtype == np.int64
    assert x_train.shape[1:] == x_test.shape[1:] == (1, 8, 8)
    assert len(x_test) == 450 and len(x_train) + len(x_test) == 1797
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert set(np.unique(y_test)) == set(range(10))


def test_saved_digits_split_is_the_seed0_test_split() -> None:
    _, _, x_test, y_test = digits_split(0)
    np.testing.assert_array_equal(np.load(train_digits.TEST_X), x_test)
    np.testing.assert_array_equal(np.load(train_digits.TEST_Y), y_test)


def test_digits_model_accuracy() -> None:
    model = torch.jit.load(str(train_digits.MODEL_PT))
    assert not model.training
    # The compiler's canonicalization is expected to fold this BatchNorm and drop the Dropout.
    kinds = {m.original_name for m in model.modules()}
    assert {"BatchNorm2d", "Dropout"} <= kinds
    x, y = np.load(train_digits.TEST_X), np.load(train_digits.TEST_Y)
    assert train_digits.accuracy(model, x, y) >= 0.95
