"""NormalizeOpset: models are brought to opset 13 where ONNX's converter can, and left alone at 13."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.transforms.canonical import NormalizeOpset
from accelc.transforms.canonical.normalize_opset import TARGET_OPSET

OPSET_BUG = (
    "normalize_opset.py _replace_contents: after `model.graph = new.graph`, model.graph.opset_imports IS "
    "new.opset_imports, so .clear() empties it before .update() copies it: the converted model has no "
    "opset import and the ensures() checker fails"
)


def _squeeze_model(opset: int):
    """Squeeze(axes) is an attribute at opset 11 and an input at 13: the conversion has to rewrite it."""
    rng = np.random.default_rng(0)
    return make(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Unsqueeze", ["h"], ["u"], name="unsq", axes=[1]),
            helper.make_node("Relu", ["u"], ["r"], name="relu"),
            helper.make_node("Squeeze", ["r"], ["y"], name="sq", axes=[1]),
        ],
        {"x": ["N", 4]},
        {"y": ["N", 3]},
        [const("w", rng.standard_normal((4, 3)))],
        opset=opset,
    )


def test_model_at_opset_13_is_unmodified() -> None:
    model = ir.from_proto(
        make([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ["N", 3]}, {"y": ["N", 3]})
    )
    result = NormalizeOpset()(model)
    assert TARGET_OPSET == 13
    assert result.modified is False
    assert result.stats == {"opset": 13}
    assert model.opset_imports[""] == 13
    assert ops(model) == ["Relu"]


def test_opset_11_model_is_converted_to_13() -> None:
    model_proto = _squeeze_model(11)
    model = ir.from_proto(model_proto)
    result = NormalizeOpset()(model)
    assert result.modified is True
    assert result.stats == {"opset": 13, "from_opset": 11}
    assert model.opset_imports[""] == 13
    sq = next(n for n in model.graph if n.op_type == "Squeeze")
    assert "axes" not in sq.attributes and len(sq.inputs) == 2  # axes moved to an input
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)})


def test_unconvertible_newer_opset_is_kept_with_a_note() -> None:
    """onnx's converter has no down-conversion for BatchNormalization 15 -> 14: keep opset 17, say why."""
    rng = np.random.default_rng(1)
    model_proto = make(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        {"x": ["N", 2, 3, 3]},
        {"y": ["N", 2, 3, 3]},
        [
            const("s", rng.uniform(0.5, 1.5, 2)),
            const("b", rng.standard_normal(2)),
            const("m", rng.standard_normal(2)),
            const("v", rng.uniform(0.5, 1.5, 2)),
        ],
        opset=17,
    )
    model = ir.from_proto(model_proto)
    result = NormalizeOpset()(model)
    assert result.modified is False
    assert result.stats == {"opset": 17}
    assert len(result.warnings) == 1 and "kept opset 17" in result.warnings[0]
    assert model.opset_imports[""] == 17
    assert_same_outputs(model_proto, model, {"x": rand(2, 2, 3, 3)})


def test_opset9_linear_upsample_keeps_its_asymmetric_sampling():
    """ONNX's converter leaves the opset-11 Resize at half_pixel; Upsample samples asymmetrically (1.65 off before)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from accelc.transforms.canonical.normalize_opset import convert_opset

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    graph = helper.make_graph([helper.make_node("Upsample", ["x", "scales"], ["y"], mode="linear")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 8])], [scales])
    old = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    old.ir_version = 7
    new = convert_opset(old, 13)
    onnx.checker.check_model(new)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    a = ort.InferenceSession(old.SerializeToString()).run(None, {"x": x})[0]
    b = ort.InferenceSession(new.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(b, a, atol=1e-6)
