"""NameNodes: unnamed and duplicate node names become unique; named models are left alone."""

from __future__ import annotations

import onnx_ir as ir
from _transform_models import assert_same_outputs, make, rand
from onnx import helper

from accelc.transforms.canonical import NameNodes


def _chain(names: list[str]):
    nodes = []
    prev = "x"
    for i, name in enumerate(names):
        out = "y" if i == len(names) - 1 else f"t{i}"
        nodes.append(helper.make_node("Relu" if i % 2 == 0 else "Sigmoid", [prev], [out], name=name))
        prev = out
    return make(nodes, {"x": ["N", 3]}, {"y": ["N", 3]})


def test_unnamed_and_duplicate_nodes_get_unique_names() -> None:
    model_proto = _chain(["", "same", "same", "", ""])
    model = ir.from_proto(model_proto)
    result = NameNodes()(model)
    names = [n.name for n in model.graph]
    assert result.modified is True
    assert all(names)
    assert len(set(names)) == len(names)
    assert names[1] == "same"  # the first holder of a name keeps it
    # ORT refuses the duplicate-named source; the same graph with distinct names is the reference.
    assert_same_outputs(_chain(["a", "b", "c", "d", "e"]), model, {"x": rand(2, 3)})


def test_named_model_is_unmodified() -> None:
    model_proto = _chain(["a", "b", "c"])
    model = ir.from_proto(model_proto)
    result = NameNodes()(model)
    assert result.modified is False
    assert [n.name for n in model.graph] == ["a", "b", "c"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3)})
