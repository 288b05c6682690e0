"""FreeBatch: a batch baked in at export becomes symbolic when no op mixes samples (Reshape targets naming it
rewritten); where an op needs it, the graph stays as exported and the note names the node. ORT agrees at the
exported batch, and the freed graph computes the exported model sample by sample at any other."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand, run
from onnx import TensorProto, helper, numpy_helper

from accelc.errors import AccelcError
from accelc.reference import Reference
from accelc.spec import BATCH_KEY, BatchNote
from accelc.transforms.canonical import FreeBatch

W = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
FC = np.random.default_rng(1).standard_normal((5, 2 * 4 * 4)).astype(np.float32)


def ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def _cnn(batch: int, flatten: list, extra: list | None = None, inits: list | None = None) -> onnx.ModelProto:
    """x[batch,1,6,6] -> Conv -> Relu -> (flatten nodes: r -> f) -> Gemm -> y[batch, 5]."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        *flatten,
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
        *(extra or []),
    ]
    out = "z" if extra else "y"
    return make(nodes, {"x": [batch, 1, 6, 6]}, {out: [batch, 5]}, [const("w", W), const("fc", FC), *(inits or [])])


def _per_sample(proto: onnx.ModelProto, x: np.ndarray, batch: int) -> np.ndarray:
    """The exported model applied to each sample alone (as the first of `batch` copies): what a free batch means."""
    return np.concatenate([run(proto, {"x": np.repeat(x[i : i + 1], batch, 0)})[0][:1] for i in range(len(x))])


def _freed(proto: onnx.ModelProto, batch: int) -> ir.Model:
    model = ir.from_proto(proto)
    result = FreeBatch()(model)
    assert result.modified is True
    assert result.stats["exported"] == batch and result.stats["free"] is True
    assert str(model.graph.inputs[0].shape[0]) == "batch" and str(model.graph.outputs[0].shape[0]) == "batch"
    assert json.loads(model.metadata_props[BATCH_KEY]) == {"exported": batch, "free": True}
    assert_same_outputs(proto, model, {"x": rand(batch, 1, 6, 6)})  # exact at the exported batch
    for n in (1, 3, 7):
        x = rand(n, 1, 6, 6, seed=n)
        np.testing.assert_allclose(run(model, {"x": x})[0], _per_sample(proto, x, batch), rtol=0, atol=1e-5)
    return model


@pytest.mark.parametrize("batch", [1, 6])
def test_a_reshape_target_that_names_the_batch_is_freed(batch: int) -> None:
    # x.view(1, -1) at batch 1; x.view(x.size(0), -1) traced with a dummy batch of 6 (the exporter folds it)
    proto = _cnn(batch, [helper.make_node("Reshape", ["r", "t"], ["f"], name="view")], inits=[ints("t", [batch, -1])])
    model = _freed(proto, batch)
    reshape = next(n for n in model.graph if n.op_type == "Reshape")
    assert reshape.inputs[1].const_value.numpy().tolist() == [-1, 32]  # reshape-to-flatten's form
    assert "t" not in model.graph.initializers


def test_a_constant_node_target_goes_with_it() -> None:
    nodes = [helper.make_node("Constant", [], ["t"], name="k", value=ints("v", [1, 32])),
             helper.make_node("Reshape", ["r", "t"], ["f"], name="view")]
    model = _freed(_cnn(1, nodes), 1)
    assert ops(model) == ["Conv", "Relu", "Reshape", "Gemm"]
    assert FreeBatch()(model).modified is False  # a free batch already


def test_batch_one_flatten_axis_0_becomes_axis_1() -> None:
    model = _freed(_cnn(1, [helper.make_node("Flatten", ["r"], ["f"], name="flat", axis=0)]), 1)
    assert next(n for n in model.graph if n.op_type == "Flatten").attributes["axis"].value == 1


@pytest.mark.parametrize("batch", [1, 6])
def test_a_batch_free_graph_only_changes_its_dims(batch: int) -> None:
    model = _freed(_cnn(batch, [helper.make_node("Flatten", ["r"], ["f"], name="flat")]), batch)
    assert ops(model) == ["Conv", "Relu", "Flatten", "Gemm"]
    assert all(str(v.shape[0]) == "batch" for n in model.graph for v in n.outputs)


def test_a_shape_chain_that_reads_the_batch_stays() -> None:
    chain = [  # x.view(x.size(0), -1) as exported with dynamic shapes, here on a fixed batch of 6
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["b"], name="size0", axis=0),
        helper.make_node("Unsqueeze", ["b", "zero1"], ["b1"], name="unsq"),
        helper.make_node("Concat", ["b1", "minus1"], ["t"], name="cat", axis=0),
        helper.make_node("Reshape", ["r", "t"], ["f"], name="view"),
    ]
    model = _freed(_cnn(6, chain, inits=[ints("zero", 0), ints("zero1", [0]), ints("minus1", [-1])]), 6)
    assert ops(model) == ["Conv", "Relu", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Gemm"]


@pytest.mark.parametrize("per_sample", ["mul", "reduce-prod"])
def test_a_shape_chain_that_names_the_batch_as_a_number_is_freed(per_sample: str) -> None:
    """[6, C*H*W]: a literal 6 and the per-sample size computed from Shape (tf2onnx writes ReduceProd)."""
    count = (helper.make_node("Mul", ["c0", "hw"], ["k"], name="count") if per_sample == "mul" else
             helper.make_node("ReduceProd", ["rest"], ["k"], name="count", keepdims=1))
    chain = [
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["c0"], name="c"),
        helper.make_node("Slice", ["s", "one", "end"], ["rest"], name="rest"),
        count,
        helper.make_node("Concat", ["six", "k"], ["t"], name="cat", axis=0),
        helper.make_node("Reshape", ["r", "t"], ["f"], name="view"),
    ]
    inits = [ints("one", [1]), ints("end", [2**62]), ints("six", [6])]
    if per_sample == "mul":
        inits.append(ints("hw", [16]))
    else:
        del chain[1]  # no Gather
    model = _freed(_cnn(6, chain, inits=inits), 6)
    reshape = next(n for n in model.graph if n.op_type == "Reshape")
    assert reshape.inputs[1].const_value.numpy().tolist() == [-1, 32]


def test_an_already_free_batch_is_left_alone() -> None:
    proto = _cnn("N", [helper.make_node("Flatten", ["r"], ["f"], name="flat")])
    model = ir.from_proto(proto)
    result = FreeBatch()(model)
    assert result.modified is False and BATCH_KEY not in model.metadata_props


def _semantic(case: str) -> tuple[onnx.ModelProto, str]:
    """Batch-4 graphs in which the batch means something; (model, the node that needs it)."""
    flat = helper.make_node("Flatten", ["r"], ["f"], name="flat")
    if case == "view(-1)":  # the batch flattened into the features
        nodes = [helper.make_node("Reshape", ["r", "t"], ["y"], name="view")]
        return make([nodes[0]], {"r": [4, 2, 4, 4]}, {"y": [128]}, [ints("t", [-1])]), "view"
    if case == "mean(0)":
        extra = [helper.make_node("ReduceMean", ["y"], ["m"], name="mean", axes=[0]),
                 helper.make_node("Sub", ["y", "m"], ["z"], name="centre")]
        return _cnn(4, [flat], extra), "mean"
    if case == "softmax(0)":
        return _cnn(4, [flat], [helper.make_node("Softmax", ["y"], ["z"], name="sm", axis=0)]), "sm"
    if case == "transpose":
        extra = [helper.make_node("Transpose", ["y"], ["t"], name="tr", perm=[1, 0]),
                 helper.make_node("Transpose", ["t"], ["z"], name="back", perm=[1, 0])]
        return _cnn(4, [flat], extra), "tr"
    if case == "per-position bias":
        extra = [helper.make_node("Add", ["y", "pos"], ["z"], name="pos_add")]
        return _cnn(4, [flat], extra, [const("pos", rand(4, 5))]), "pos_add"
    if case == "batch size as a number":
        extra = [helper.make_node("Shape", ["y"], ["s"], name="shape"),
                 helper.make_node("Gather", ["s", "zero"], ["n"], name="n"),
                 helper.make_node("Cast", ["n"], ["nf"], name="nf", to=TensorProto.FLOAT),
                 helper.make_node("Div", ["y", "nf"], ["z"], name="div")]
        return _cnn(4, [flat], extra, [ints("zero", 0)]), "div"
    assert case == "unknown op"
    extra = [helper.make_node("Einsum", ["y"], ["z"], name="ein", equation="ij->ij")]
    return _cnn(4, [flat], extra), "ein"


@pytest.mark.parametrize("case", ["view(-1)", "mean(0)", "softmax(0)", "transpose", "per-position bias",
                                  "batch size as a number", "unknown op"])
def test_a_batch_an_op_needs_stays_fixed_and_the_note_names_the_node(case: str) -> None:
    proto, node = _semantic(case)
    model = ir.from_proto(proto)
    result = FreeBatch()(model)
    assert result.modified is False
    assert result.stats["exported"] == 4 and result.stats["free"] is False
    assert f"node '{node}'" in result.stats["reason"] and len(result.warnings) == 1
    assert model.graph.inputs[0].shape[0] == 4
    note = BatchNote.from_metadata(model.metadata_props)
    assert note.exported == 4 and note.free is False and f"'{node}'" in note.reason
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    feeds = {proto.graph.input[0].name: rand(*dims)}
    assert_same_outputs(proto, model, feeds)


def test_a_kept_batch_runs_a_multiple_chunk_by_chunk_and_refuses_other_counts_naming_the_node() -> None:
    proto, _ = _semantic("mean(0)")
    model = ir.from_proto(proto)
    FreeBatch()(model)
    reference = Reference(ir.to_proto(model))
    x = rand(8, 1, 6, 6)
    got = reference.run([x])[0]
    want = np.concatenate([run(proto, {"x": x[i : i + 4]})[0] for i in (0, 4)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    with pytest.raises(AccelcError) as info:
        reference.run([x[:7]])
    msg = str(info.value)
    assert "fixed batch of 4" in msg and "node 'mean' (ReduceMean) reduces over the batch axis" in msg
    assert "got 7 samples" in msg and "\n" not in msg


def test_the_rules_follow_per_sample_ops() -> None:
    """Ops that keep samples apart, each with the batch at axis 0: all freed at once."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Transpose", ["bn"], ["t"], name="nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Softmax", ["t"], ["sm"], name="sm", axis=-1),
        helper.make_node("Transpose", ["sm"], ["r"], name="nchw", perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMean", ["r"], ["g"], name="gap", axes=[2, 3], keepdims=1),
        helper.make_node("Squeeze", ["g", "hw"], ["sq"], name="squeeze"),
        helper.make_node("Unsqueeze", ["sq", "last"], ["u"], name="unsqueeze"),
        helper.make_node("Concat", ["u", "u"], ["cc"], name="cat", axis=1),
        helper.make_node("Slice", ["cc", "s0", "s1", "s_ax"], ["sl"], name="slice"),
        helper.make_node("Reshape", ["sl", "t2"], ["f"], name="view"),
        helper.make_node("MatMul", ["f", "mw"], ["y"], name="mm"),
    ]
    inits = [const("w", W), const("s", [1.0, 2.0]), const("b", [0.1, 0.2]), const("m", [0.0, 0.5]),
             const("v", [1.0, 2.0]), ints("hw", [2, 3]), ints("last", [2]), ints("s0", [0]), ints("s1", [3]),
             ints("s_ax", [1]), ints("t2", [6, 3]), const("mw", rand(3, 5))]
    proto = make(nodes, {"x": [6, 1, 6, 6]}, {"y": [6, 5]}, inits)
    model = _freed(proto, 6)
    assert ops(model) == [n.op_type for n in nodes]
