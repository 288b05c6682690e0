"""FoldBatchNorm: BatchNormalization after Conv/Gemm disappears into the weights; ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.transforms.canonical import FoldBatchNorm


def _bn_params(c: int, rng: np.random.Generator, prefix: str = "") -> list:
    return [
        const(f"{prefix}s", rng.uniform(0.5, 1.5, c)),
        const(f"{prefix}bb", rng.standard_normal(c)),
        const(f"{prefix}m", rng.standard_normal(c)),
        const(f"{prefix}v", rng.uniform(0.5, 1.5, c)),
    ]


def _bn(inp: str, out: str, prefix: str = "", name: str = "bn"):
    return helper.make_node(
        "BatchNormalization",
        [inp, f"{prefix}s", f"{prefix}bb", f"{prefix}m", f"{prefix}v"],
        [out],
        name=name,
        epsilon=1e-3,
    )


@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_then_batchnorm_is_folded(with_bias: bool) -> None:
    rng = np.random.default_rng(0)
    conv_in = ["x", "w", "b"] if with_bias else ["x", "w"]
    inits = [const("w", rng.standard_normal((4, 2, 3, 3)))] + (
        [const("b", rng.standard_normal(4))] if with_bias else []
    )
    model_proto = make(
        [
            helper.make_node("Conv", conv_in, ["c"], name="conv", pads=[1, 1, 1, 1]),
            _bn("c", "bn_out"),
            helper.make_node("Relu", ["bn_out"], ["y"], name="relu"),
        ],
        {"x": ["N", 2, 5, 5]},
        {"y": ["N", 4, 5, 5]},
        inits + _bn_params(4, rng),
    )
    model = ir.from_proto(model_proto)
    result = FoldBatchNorm()(model)
    assert result.modified is True
    assert ops(model) == ["Conv", "Relu"]
    assert result.stats == {"folded": 1, "kept": 0}
    assert result.warnings == []
    assert_same_outputs(model_proto, model, {"x": rand(3, 2, 5, 5)})


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_then_batchnorm_is_folded(trans_b: int) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 6) if trans_b else (6, 3))
    model_proto = make(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc", transB=trans_b), _bn("g", "y")],
        {"x": ["N", 6]},
        {"y": ["N", 3]},
        [const("w", w), const("b", rng.standard_normal(3))] + _bn_params(3, rng),
    )
    model = ir.from_proto(model_proto)
    result = FoldBatchNorm()(model)
    assert result.modified is True
    assert "BatchNormalization" not in ops(model)
    assert ops(model) == ["Gemm"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, {"x": rand(4, 6)})


def test_two_conv_batchnorm_pairs_are_both_folded() -> None:
    rng = np.random.default_rng(2)
    model_proto = make(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
            _bn("c1", "b1", "a", "bn1"),
            helper.make_node("Relu", ["b1"], ["r"], name="relu"),
            helper.make_node("Conv", ["r", "w2"], ["c2"], name="conv2"),
            _bn("c2", "y", "b", "bn2"),
        ],
        {"x": ["N", 2, 4, 4]},
        {"y": ["N", 3, 2, 2]},
        [const("w1", rng.standard_normal((3, 2, 1, 1))), const("w2", rng.standard_normal((3, 3, 3, 3)))]
        + _bn_params(3, rng, "a")
        + _bn_params(3, rng, "b"),
    )
    model = ir.from_proto(model_proto)
    result = FoldBatchNorm()(model)
    assert result.stats == {"folded": 2, "kept": 0}
    assert ops(model) == ["Conv", "Relu", "Conv"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 2, 4, 4)})


def test_batchnorm_on_a_graph_input_is_kept_with_a_warning() -> None:
    rng = np.random.default_rng(3)
    model_proto = make([_bn("x", "y")], {"x": ["N", 3, 4, 4]}, {"y": ["N", 3, 4, 4]}, _bn_params(3, rng))
    model = ir.from_proto(model_proto)
    result = FoldBatchNorm()(model)
    assert result.modified is False
    assert ops(model) == ["BatchNormalization"]
    assert result.stats == {"folded": 0, "kept": 1}
    assert len(result.warnings) == 1 and "BatchNormalization" in result.warnings[0]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3, 4, 4)})


def test_batchnorm_after_a_conv_whose_output_is_shared_is_kept() -> None:
    """Folding would change the other consumer's input: the BN must stay."""
    rng = np.random.default_rng(4)
    model_proto = make(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
            _bn("c", "bn_out"),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Add", ["bn_out", "r"], ["y"], name="add"),
        ],
        {"x": ["N", 2, 4, 4]},
        {"y": ["N", 3, 4, 4]},
        [const("w", rng.standard_normal((3, 2, 1, 1))), const("b", rng.standard_normal(3))]
        + _bn_params(3, rng),
    )
    model = ir.from_proto(model_proto)
    result = FoldBatchNorm()(model)
    assert result.modified is False
    assert ops(model) == ["Conv", "BatchNormalization", "Relu", "Add"]
    assert result.warnings
    assert_same_outputs(model_proto, model, {"x": rand(2, 2, 4, 4)})
