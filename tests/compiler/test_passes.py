"""Tests for accelc.passes: pass specs, the registry, the Pipeline and the base class's contract."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelc.errors import AccelcError, PassError
from accelc.passes import (
    REGISTRY,
    AccelcPass,
    PassContext,
    PassRecord,
    PassResult,
    Pipeline,
    create_pass,
    parse_pass_spec,
    register,
    run_passes,
)

BUILTIN = {
    "canonicalize",
    "fold-batchnorm",
    "fold-constants",
    "infer-shapes",
    "name-nodes",
    "normalize-opset",
    "remove-noops",
}


def _mlp() -> onnx.ModelProto:
    """x[N,4] -> Gemm(4->3) -> Identity -> Relu -> y; seeded."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Identity", ["h"], ["i"], name="noop"),
        helper.make_node("Relu", ["i"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [
            numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: ir.Model | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    proto = ir.to_proto(model) if isinstance(model, ir.Model) else model
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


X = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)


class _Noop(AccelcPass):
    name = "test-noop"

    def call(self, model: ir.Model) -> PassResult:
        return PassResult(
            model, False, stats={"seen": sum(1 for _ in model.graph)}, warnings=["nothing to do"]
        )


class _Boom(AccelcPass):
    name = "test-boom"

    def call(self, model: ir.Model) -> PassResult:
        raise ValueError("kaboom\nsecond line that must not reach the message")


class _TypedFailure(AccelcPass):
    name = "test-typed"

    def call(self, model: ir.Model) -> PassResult:
        raise PassError("typed failure from inside the pass")


class _Breaker(AccelcPass):
    """Leaves an invalid model: a node whose operator does not exist."""

    name = "test-breaker"

    def call(self, model: ir.Model) -> PassResult:
        model.graph.node(0).op_type = "NotAnOp"
        return PassResult(model, True)


class _RenameRelu(AccelcPass):
    name = "test-rename-relu"

    def call(self, model: ir.Model) -> PassResult:
        changed = False
        for node in model.graph:
            if node.op_type == "Relu":
                node.name = "renamed_relu"
                changed = True
        return PassResult(model, changed, stats={"renamed": int(changed)})


# ---------------------------------------------------------------- parse_pass_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("canonicalize", ("canonicalize", {})),
        ("quantize:int8", ("quantize", {"mode": "int8"})),
        ("prune:sparsity=0.5,scope=global", ("prune", {"sparsity": 0.5, "scope": "global"})),
        ("prune:sparsity=1", ("prune", {"sparsity": 1})),
        (
            " prune : sparsity = 0.25 , mode = structured ",
            ("prune", {"sparsity": 0.25, "mode": "structured"}),
        ),
        (
            "x:flag=true,off=False,on=yes,n=no,a=ON,b=off",
            ("x", {"flag": True, "off": False, "on": True, "n": False, "a": True, "b": False}),
        ),
        ("x:k=-3,f=1e-3", ("x", {"k": -3, "f": 1e-3})),
        ("x:a=1,,b=2,", ("x", {"a": 1, "b": 2})),
    ],
)
def test_parse_pass_spec(spec: str, expected: tuple[str, dict]) -> None:
    name, options = parse_pass_spec(spec)
    assert (name, options) == expected
    for key, value in expected[1].items():
        assert type(options[key]) is type(value), key  # typed: 1 is an int, 0.5 a float, 'true' a bool


# ---------------------------------------------------------------- registry and create_pass


def test_builtin_passes_are_registered() -> None:
    create_pass("infer-shapes")  # loads the built-ins
    assert BUILTIN <= set(REGISTRY)
    for name in BUILTIN:
        assert REGISTRY[name].name == name


def test_create_pass_builds_the_registered_class_with_context() -> None:
    ctx = PassContext(calibration=np.zeros((2, 4), np.float32), target="cpu", seed=7)
    p = create_pass("infer-shapes", ctx)
    assert type(p) is REGISTRY["infer-shapes"]
    assert p.context is ctx


def test_create_pass_returns_a_pass_object_as_is() -> None:
    p = _Noop()
    assert create_pass(p) is p


def test_create_pass_unknown_name_lists_known_passes() -> None:
    with pytest.raises(PassError) as info:
        create_pass("no-such-pass:x=1")
    msg = str(info.value)
    assert "unknown pass 'no-such-pass'" in msg
    for name in BUILTIN:
        assert name in msg
    assert "\n" not in msg
    assert isinstance(info.value, AccelcError)


@pytest.mark.parametrize("spec", ["infer-shapes:bogus=1", "canonicalize:bogus=1", "name-nodes:int8"])
def test_create_pass_bad_options_is_a_pass_error(spec: str) -> None:
    with pytest.raises(PassError, match=spec.split(":")[0]):
        create_pass(spec)


def test_register_requires_a_name() -> None:
    class Nameless(AccelcPass):
        def call(self, model: ir.Model) -> PassResult:
            return PassResult(model, False)

    with pytest.raises(TypeError, match="Nameless"):
        register(Nameless)
    assert "" not in REGISTRY


# ---------------------------------------------------------------- AccelcPass contract


def test_a_pass_that_breaks_the_model_is_rejected_by_ensures() -> None:
    model = ir.from_proto(_mlp())
    with pytest.raises(ir.passes.PostconditionError) as info:
        _Breaker()(model)
    assert isinstance(info.value.__cause__, onnx.checker.ValidationError)
    assert "NotAnOp" in str(info.value.__cause__)


def test_ensures_accepts_a_valid_model() -> None:
    model = ir.from_proto(_mlp())
    result = _Noop()(model)
    assert result.modified is False
    assert result.stats == {"seen": 3}
    np.testing.assert_allclose(_run(result.model, X), _run(_mlp(), X), rtol=0, atol=0)


def test_pass_without_options_has_empty_options() -> None:
    assert _Noop().options == {}
    with pytest.raises(PassError, match="takes no options"):
        _Noop(sparsity=0.5)


# ---------------------------------------------------------------- Pipeline


def test_pipeline_collects_one_record_per_pass() -> None:
    model = ir.from_proto(_mlp())
    reference = _run(_mlp(), X)
    pipeline = Pipeline([_Noop(), create_pass("remove-noops"), _RenameRelu(), _Noop()])
    result = pipeline(model)

    assert [r.name for r in pipeline.records] == [
        "test-noop",
        "remove-noops",
        "test-rename-relu",
        "test-noop",
    ]
    assert [r.modified for r in pipeline.records] == [False, True, True, False]
    assert all(isinstance(r, PassRecord) and r.seconds >= 0 for r in pipeline.records)
    assert pipeline.records[0].stats == {"seen": 3}
    assert pipeline.records[3].stats == {"seen": 2}  # the Identity was gone when it ran again
    assert pipeline.records[1].stats["removed"]["Identity"] == 1
    assert result.modified is True
    assert isinstance(result, PassResult)
    assert result.stats["test-rename-relu"] == {"renamed": 1}
    assert "test-noop: nothing to do" in result.warnings
    # Structure and numbers.
    assert [n.op_type for n in model.graph] == ["Gemm", "Relu"]
    assert "renamed_relu" in [n.name for n in model.graph]
    np.testing.assert_allclose(_run(result.model, X), reference, rtol=0, atol=1e-6)
    d = pipeline.records[1].to_dict()
    assert set(d) == {"name", "options", "modified", "seconds", "stats", "warnings"}


def test_pipeline_of_passes_that_change_nothing_is_unmodified() -> None:
    model = ir.from_proto(_mlp())
    result = Pipeline([_Noop(), _Noop()])(model)
    assert result.modified is False
    assert len(result.warnings) == 2


def test_pipeline_records_are_reset_on_each_run() -> None:
    pipeline = Pipeline([_Noop()])
    pipeline(ir.from_proto(_mlp()))
    pipeline(ir.from_proto(_mlp()))
    assert len(pipeline.records) == 1


def test_pipeline_wraps_a_failing_pass_naming_it() -> None:
    model = ir.from_proto(_mlp())
    pipeline = Pipeline([_Noop(), _Boom(), _Noop()])
    with pytest.raises(PassError) as info:
        pipeline(model)
    msg = str(info.value)
    assert "test-boom" in msg and "ValueError" in msg and "kaboom" in msg
    assert "second line" not in msg  # one-line message
    assert isinstance(info.value.__cause__, ValueError)
    assert [r.name for r in pipeline.records] == ["test-noop"]  # the passes after it did not run


def test_pipeline_wraps_a_broken_contract_naming_the_pass() -> None:
    with pytest.raises(PassError, match="test-breaker"):
        Pipeline([_Breaker()])(ir.from_proto(_mlp()))


def test_pipeline_passes_a_typed_error_through() -> None:
    with pytest.raises(PassError, match="^typed failure from inside the pass$"):
        Pipeline([_TypedFailure()])(ir.from_proto(_mlp()))


def test_pipeline_is_a_pass() -> None:
    inner = Pipeline([_RenameRelu()])
    outer = Pipeline([_Noop(), inner])
    result = outer(ir.from_proto(_mlp()))
    assert result.modified is True
    assert [r.name for r in outer.records] == ["test-noop", "pipeline"]
    assert outer.records[1].stats == {"test-rename-relu": {"renamed": 1}}


def test_run_passes_takes_specs_and_objects() -> None:
    model = ir.from_proto(_mlp())
    reference = _run(_mlp(), X)
    records = run_passes(model, ["remove-noops", _Noop(), "name-nodes"], PassContext())
    assert [r.name for r in records] == ["remove-noops", "test-noop", "name-nodes"]
    assert records[0].modified is True
    assert "Identity" not in [n.op_type for n in model.graph]
    np.testing.assert_allclose(_run(model, X), reference, rtol=0, atol=1e-6)


def test_run_passes_unknown_spec_fails_before_any_pass_runs() -> None:
    model = ir.from_proto(_mlp())
    with pytest.raises(PassError, match="unknown pass"):
        run_passes(model, ["remove-noops", "nope"], PassContext())
    assert "Identity" in [n.op_type for n in model.graph]
