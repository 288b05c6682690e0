"""ONNX's backend node tests through accelc (accelc.tools.conformance.onnx_nodes): case selection and conversion
(fast, no compile), and a fixed handful compiled for fpga with no calibration, each in the class it must be in."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import accelc
from accelc.errors import UnsupportedOpError
from accelc.tools.conformance.onnx_nodes import (
    CLASSES,
    bad_lines,
    lowered_ops,
    read_case,
    run_node_cases,
    select,
    table,
    write_case,
)
from accelc.tools.conformance.run import Outcome


@pytest.fixture(scope="module")
def cases():
    return {c.name: c for c in select()}


def _ort(case):
    sess = ort.InferenceSession(case.model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: case.inputs[0]})


def test_selection_is_the_ops_in_the_support_table(cases):
    ops = {c.op for c in cases.values()}
    assert ops <= lowered_ops()
    assert {"Conv", "MaxPool", "Relu", "Add", "Gemm", "Resize", "Softmax"} <= ops
    assert "test_abs" not in cases and "test_cast_FLOAT_to_DOUBLE" not in cases  # ops accelc does not lower
    only = select(ops=["Conv", "Abs"])
    assert only and {c.op for c in only} == {"Conv"}
    assert [c.name for c in select(names=["test_relu"])] == ["test_relu"]


@pytest.mark.parametrize("name", ["test_basic_conv_with_padding", "test_gemm_default_vector_bias",
                                  "test_clip_default_max", "test_reshape_reduced_dims", "test_maxpool_2d_pads"])
def test_conversion_keeps_the_first_input_and_freezes_the_rest(cases, name):
    case = cases[name]
    assert not case.skip
    onnx.checker.check_model(case.model, full_check=True)
    graph = case.model.graph
    assert len(graph.input) == 1 and len(case.inputs) == 1
    assert case.inputs[0].dtype == np.float32
    node_inputs = [i for i in graph.node[0].input if i]
    assert {t.name for t in graph.initializer} == set(node_inputs[1:])
    for got, want in zip(_ort(case), case.outputs):  # the converted model computes the expected outputs
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_conv_weights_are_the_test_values(cases):
    case = cases["test_basic_conv_with_padding"]
    np.testing.assert_array_equal(case.inputs[0].reshape(-1), np.arange(25, dtype=np.float32))
    w = onnx.numpy_helper.to_array(case.model.graph.initializer[0])
    np.testing.assert_array_equal(w, np.ones((1, 1, 3, 3), dtype=np.float32))


@pytest.mark.parametrize(("name", "why"), [
    ("test_add_int8", "first input is int8"),
    ("test_max_float64", "first input is float64"),
    ("test_reduce_sum_empty_set", "empty tensor"),
    ("test_quantizelinear_e4m3fn", "numpy does not hold"),
    ("test_softmax_axis_0_expanded", "function-expanded"),
])
def test_cases_that_do_not_fit_are_not_applicable_with_a_reason(cases, name, why):
    assert why in cases[name].skip and cases[name].model is None
    assert run_node_cases([cases[name]], jobs=1)[0].cls == "n/a"  # not run: no subprocess, no compile


def test_a_written_case_reads_back_the_same(cases, tmp_path):
    case = cases["test_maxpool_2d_pads"]
    write_case(case, tmp_path)
    back = read_case(tmp_path)
    assert (back.name, back.op) == (case.name, case.op) and back.model == case.model
    for a, b in zip([*back.inputs, *back.outputs], [*case.inputs, *case.outputs]):
        np.testing.assert_array_equal(a, b)


# Node tests that crashed while lowering (hls4ml's IndexError on an empty per-sample shape, a range calibration
# that could not run a fixed batch of 3, QONNX's channels-last assertion, hls4ml's KeyError on a MaxPool indices
# output, an unfusable QuantizeLinear), now refused by name before lowering: no g++ involved.
FORMER_CRASHES = {
    "test_clip_example": "a rank-1 input (no per-sample dims",
    "test_gemm_default_matrix_bias": "needs its exported batch of 3 (node 'y' (Gemm) adds a bias",
    "test_max_two_inputs": "needs its exported batch of 3",
    "test_batchnorm_example_training_mode": "training_mode=1",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool indices output is used",
    "test_quantizelinear": "its integer output is a graph output",
}


@pytest.mark.parametrize(("name", "why"), FORMER_CRASHES.items(), ids=list(FORMER_CRASHES))
def test_former_lowering_crashes_are_refused_by_name(cases, tmp_path, name, why):
    path = write_case(cases[name], tmp_path / "case")
    with pytest.raises(UnsupportedOpError) as info:
        accelc.compile(str(path), target="fpga", out=tmp_path / "art", calibration=None)
    assert why in info.value.describe(None, None)


def test_table_counts_every_class_per_op_and_in_total():
    outs = [Outcome("a", "Relu", "fpga", "right"), Outcome("b", "Relu", "fpga", "silent", 1.0, 0.1, "x"),
            Outcome("c", "Conv", "fpga", "n/a", detail="why")]
    text = table(outs)
    assert "| Relu | 2 | 1 | 0 | 0 | 1 | 0 | 0 |" in text and "| **TOTAL** | 3 | 1 | 0 | 0 | 1 | 0 | 1 |" in text
    assert bad_lines(outs) == ["- silent b (Relu): max abs err 1 > tol 0.1 x"]
    assert len(CLASSES) == 6


# (case, class): ONNX's arange inputs (up to 24, 25) are beyond the N(0,1) ranges of an uncalibrated compile: the
# range guard warns; Relu on N(0,1) data is right; a transposed-A Gemm is refused by name.
SUBSET = {
    "test_basic_conv_with_padding": "warned",
    "test_maxpool_2d_precomputed_pads": "warned",
    "test_relu": "right",
    "test_add_bcast": "right",
    "test_gemm_transposeA": "refused",
}


@pytest.mark.slow
def test_a_fixed_subset_lands_in_its_class_and_none_is_silent(cases, tmp_path):
    outcomes = run_node_cases([cases[n] for n in SUBSET], "fpga", jobs=2, workdir=tmp_path)
    got = {o.case: o.cls for o in outcomes}
    assert got == SUBSET, [o.to_dict() for o in outcomes]
    assert not bad_lines(outcomes)
    warned = [o for o in outcomes if o.cls == "warned"]
    assert all("InputRangeWarning" in o.detail for o in warned)

