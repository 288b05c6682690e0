"""Load-time refusals: NaN/Inf weights name the tensor (legitimate infinities still load), and shapes too large to
run are refused with one line before anything allocates a sample."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch
from _transform_models import const, make
from onnx import helper

import accelc
from accelc.errors import ModelLoadError
from accelc.frontend import load
from accelc.frontend.sanity import MAX_ELEMENTS, refuse_huge_values
from accelc.passes import PassContext
from accelc.transforms.canonical import Canonicalize

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx's TorchScript exporter

HUGE = [1, 3, 100000, 100000]


@contextlib.contextmanager
def returns_within(seconds: int) -> Iterator[None]:
    """A guard, not a timing assert: fail (instead of hanging the run) if the block is still busy after `seconds`."""
    def fail(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.fc = torch.nn.Conv2d(1, 4, 3), torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv1(x)).flatten(1))


class Clamped(ConvNet):
    """torch.clamp and masked_fill with infinite constants: the exporter writes them as Clip bounds and a Where."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self.conv1(x), min=float("-inf"), max=6.0)
        y = self.fc(y.flatten(1))
        return torch.softmax(y.masked_fill(y > 5.0, float("-inf")), dim=-1)


def _save(model: onnx.ModelProto, tmp_path, name: str = "m.onnx") -> str:
    path = tmp_path / name
    onnx.save(model, path)
    return str(path)


def _matmul(weight: np.ndarray) -> onnx.ModelProto:
    return make([helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")], {"x": ["N", 4]}, {"y": ["N", 4]},
                [const("w", weight)])


# --- NaN / Inf weights ---------------------------------------------------------------------------------------


def test_a_nan_conv_weight_of_a_torch_model_is_refused_naming_the_parameter() -> None:
    net = ConvNet().eval()
    with torch.no_grad():
        net.conv1.weight[0, 0, 1, 1] = float("nan")
        net.conv1.weight[1, 0, 0, 0] = float("nan")
    with pytest.raises(ModelLoadError) as err:
        load(net, input_shape=(1, 1, 8, 8))
    msg = str(err.value)
    assert "\n" not in msg
    assert "'conv1.weight'" in msg and "Conv" in msg and "2 NaN of 36 values" in msg
    assert "fc.weight" not in msg  # only the bad tensor is named
    assert "retrain or re-export it" in msg


def test_an_inf_matmul_weight_of_an_onnx_model_is_refused(tmp_path) -> None:
    w = np.ones((4, 4), np.float32)
    w[0, :2], w[3, 3] = np.inf, -np.inf
    with pytest.raises(ModelLoadError, match=r"'w' \(read by MatMul 'dense'\): 2 \+Inf, 1 -Inf of 16 values"):
        load(_save(_matmul(w), tmp_path))


def test_several_bad_tensors_are_grouped_in_one_capped_line(tmp_path) -> None:
    nodes, inits, prev = [], [], "x"
    for i in range(6):
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"], name=f"dense{i}"))
        inits.append(const(f"w{i}", np.full((4, 4), np.nan if i % 2 else np.inf)))
        prev = f"h{i}"
    nodes[-1].output[0] = "y"
    with pytest.raises(ModelLoadError) as err:
        load(_save(make(nodes, {"x": ["N", 4]}, {"y": ["N", 4]}, inits), tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "6 weight tensor(s)" in msg
    assert "'w0'" in msg and "'w3'" in msg and "'w5'" not in msg and "+2 more" in msg


def test_a_nan_constant_node_is_refused_even_where_inf_would_be_allowed(tmp_path) -> None:
    nodes = [helper.make_node("Constant", [], ["lo"], name="low", value_float=float("nan")),
             helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")]
    with pytest.raises(ModelLoadError, match=r"'lo' \(read by Clip 'clip'\): 1 NaN of 1 values"):
        load(_save(make(nodes, {"x": ["N", 4]}, {"y": ["N", 4]}), tmp_path))


def test_torch_clamp_and_masked_fill_with_infinities_still_load() -> None:
    loaded = load(Clamped().eval(), input_shape=(1, 1, 8, 8))
    ops = {n.op_type for n in loaded.model.graph}
    assert {"Clip", "Where", "Softmax"} <= ops


def test_infinite_clip_bounds_where_operands_and_an_additive_softmax_mask_load(tmp_path) -> None:
    mask = np.triu(np.full((4, 4), -np.inf, np.float32), 1)
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Greater", ["c", "zero"], ["pos"], name="gt"),
        helper.make_node("Where", ["pos", "c", "ninf"], ["w"], name="where"),
        helper.make_node("Max", ["w", "ninf"], ["m"], name="max"),
        helper.make_node("Add", ["m", "mask"], ["s"], name="add_mask"),
        helper.make_node("Softmax", ["s"], ["y"], name="softmax", axis=-1),
    ]
    inits = [const("lo", -np.inf), const("hi", 6.0), const("zero", 0.0), const("ninf", -np.inf), const("mask", mask)]
    load(_save(make(nodes, {"x": ["N", 4, 4]}, {"y": ["N", 4, 4]}, inits), tmp_path))


def test_an_inf_added_to_data_that_is_not_a_softmax_mask_is_refused(tmp_path) -> None:
    nodes = [helper.make_node("Add", ["x", "b"], ["y"], name="bias")]
    with pytest.raises(ModelLoadError, match=r"'b' \(read by Add 'bias'\): 1 \+Inf"):
        load(_save(make(nodes, {"x": ["N", 4]}, {"y": ["N", 4]}, [const("b", [0, np.inf, 0, 0])]), tmp_path))


# --- huge shapes ---------------------------------------------------------------------------------------------


def test_a_huge_input_is_refused_by_compile_with_one_line_before_any_allocation(tmp_path) -> None:
    model = make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], {"x": HUGE},
                 {"y": [1, 4, 100000, 100000]}, [const("w", np.ones((4, 3, 1, 1)))])
    with returns_within(60), pytest.raises(ModelLoadError) as err:  # before: MemoryError in numpy, from lowering
        accelc.compile(_save(model, tmp_path), target="fpga", out=tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg
    assert "input 'x' of shape (1, 3, 100000, 100000)" in msg and "120000000000 bytes" in msg and "bound" in msg


def test_a_huge_given_input_shape_is_refused_before_torch_allocates_it() -> None:
    with returns_within(60), pytest.raises(ModelLoadError, match=r"input 0 of shape \(1, 3, 100000, 100000\)"):
        load(ConvNet(), input_shape=HUGE)


def _expand(shape: list[int]) -> onnx.ModelProto:
    """A small input broadcast to `shape`, then averaged back down."""
    nodes = [helper.make_node("Expand", ["x", "shape"], ["big"], name="blow_up"),
             helper.make_node("ReduceMean", ["big"], ["y"], name="mean", keepdims=1)]
    shape_init = onnx.numpy_helper.from_array(np.array(shape, np.int64), "shape")
    return make(nodes, {"x": ["N", 3, 1, 1]}, {"y": ["N", 1, 1, 1]}, [shape_init])


def test_an_intermediate_blow_up_is_refused_at_load_naming_the_node(tmp_path) -> None:
    with returns_within(60), pytest.raises(ModelLoadError) as err:
        load(_save(_expand(HUGE), tmp_path))
    msg = str(err.value)
    assert "\n" not in msg
    assert "value 'big' (made by Expand node 'blow_up') of shape ('N', 3, 100000, 100000)" in msg
    assert "120000000000 bytes" in msg and "32 samples" in msg


def test_refuse_huge_values_bounds_the_canonical_graph_by_the_samples_run(tmp_path) -> None:
    loaded = load(_save(_expand([1, 3, 64, 64]), tmp_path))  # 48 KiB per sample: fine for 32 samples
    model = loaded.model
    Canonicalize(PassContext())(model)
    refuse_huge_values(model, 32)
    samples = MAX_ELEMENTS // (3 * 64 * 64) + 1  # a calibration set that large would not fit
    with pytest.raises(ModelLoadError, match=rf"of shape \(.*3, 64, 64\) .*the {samples} samples the compile runs"):
        refuse_huge_values(model, samples)


def test_refuse_huge_values_reads_the_inferred_shapes_of_an_ir_model() -> None:
    proto = onnx.shape_inference.infer_shapes(make(
        [helper.make_node("MatMul", ["x", "row"], ["y"], name="outer")], {"x": ["N", 100000, 1]},
        {"y": ["N", 100000, 100000]}, [const("row", np.ones((1, 100000)))]))
    model = ir.serde.deserialize_model(proto)
    with pytest.raises(ModelLoadError, match=r"value 'y' \(made by MatMul node 'outer'\) of shape \('N', 100000, "
                                             r"100000\) takes 40000000000 bytes"):
        refuse_huge_values(model, 32)
