"""accelc.errors: a refusal of many nodes reads as a summary line plus one line per (op, reason, hint), capped to a
screenful, while `.unsupported` keeps every node for the API."""

from __future__ import annotations

import pickle

from accelc.errors import MAX_GROUPS, MAX_NAMES, Unsupported, UnsupportedOpError, format_unsupported, group_unsupported

CAST = ("operator not lowered to hls4ml", "see the README's table of supported ops")
TRANSPOSE = ("moves data inside the model", "export in the layout the Dense layer reads")
REDUCE = ("reduces over axes [1] (not every spatial axis)", "")


def _mixed() -> list[Unsupported]:
    """23 nodes of 3 ops, interleaved as a graph would have them: 12 Cast, 8 Transpose, 3 ReduceMean."""
    items = []
    for i in range(12):
        items.append(Unsupported("Cast", f"/Cast_{i}", "fpga", *CAST))
        if i < 8:
            items.append(Unsupported("Transpose", f"/Transpose_{i}", "fpga", *TRANSPOSE))
        if i < 3:
            items.append(Unsupported("ReduceMean", f"/ReduceMean_{i}", "fpga", *REDUCE))
    return items


def test_many_nodes_of_three_ops_read_as_a_summary_and_one_line_per_group() -> None:
    items = _mixed()
    err = UnsupportedOpError("fpga", items)
    lines = str(err).splitlines()
    assert lines[0] == "23 node(s) cannot be lowered to target 'fpga' (Cast ×12, Transpose ×8, ReduceMean ×3):"
    assert lines[1] == ("  Cast ×12: /Cast_0, /Cast_1, /Cast_2 … (+9) — operator not lowered to hls4ml "
                        "(hint: see the README's table of supported ops)")
    assert lines[2] == ("  Transpose ×8: /Transpose_0, /Transpose_1, /Transpose_2 … (+5) — moves data inside the "
                        "model (hint: export in the layout the Dense layer reads)")
    assert lines[3] == ("  ReduceMean ×3: /ReduceMean_0, /ReduceMean_1, /ReduceMean_2 — reduces over axes [1] "
                        "(not every spatial axis)")  # all names fit: no "(+N)"; no hint: no "(hint: )"
    assert len(lines) == 4
    assert len(str(err)) < 500  # was one line of every node's full sentence (~2,000 characters here)
    # The API keeps every node, in graph order, as given.
    assert err.unsupported == items and err.unsupported is not items
    assert err.target == "fpga"


def test_describe_without_caps_lists_every_node() -> None:
    items = _mixed()
    full = UnsupportedOpError("fpga", items).describe(max_groups=None, max_names=None)
    assert all(u.node in full for u in items)
    assert "(+" not in full
    assert full.splitlines()[0] == str(UnsupportedOpError("fpga", items)).splitlines()[0]
    many = [Unsupported(f"Op{i}", f"n{i}", "fpga", "not lowered") for i in range(MAX_GROUPS + 5)]
    full = UnsupportedOpError("fpga", many).describe(max_groups=None, max_names=None)
    assert "(+" not in full and all(f"Op{i} ×1" in full.splitlines()[0] for i in range(len(many)))


def test_groups_beyond_the_cap_are_counted_on_one_line_naming_inspect() -> None:
    items = [Unsupported(f"Op{i}", f"n{i}", "fpga", "not lowered") for i in range(MAX_GROUPS + 5)]
    items += [Unsupported("Op0", "n0_b", "fpga", "not lowered")]  # Op0 is the largest group: shown first
    lines = str(UnsupportedOpError("fpga", items)).splitlines()
    assert len(lines) == 1 + MAX_GROUPS + 1  # summary, the capped groups, the count of the rest
    assert lines[1] == "  Op0 ×2: n0, n0_b — not lowered"
    assert lines[2] == "  Op1 ×1: n1 — not lowered"  # ties keep graph order
    assert lines[-1] == ("  … and 5 more group(s) of 5 node(s); `accelc inspect MODEL --target fpga` "
                         "lists every node")
    # The summary line counts the first few ops and how many more there are.
    assert lines[0].startswith(f"{len(items)} node(s) cannot be lowered to target 'fpga' (Op0 ×2, Op1 ×1, ")
    assert lines[0].endswith(f"(+{MAX_GROUPS + 5 - 6} ops)):")
    full = format_unsupported("fpga", items, None, None).splitlines()
    assert len(full) == 1 + MAX_GROUPS + 5 and not any("more group" in ln for ln in full)


def test_a_target_without_inspect_points_to_debug() -> None:
    items = [Unsupported(f"Op{i}", f"n{i}", "finetune", "no torch translation") for i in range(MAX_GROUPS + 1)]
    assert str(UnsupportedOpError("finetune", items)).splitlines()[-1].endswith("`accelc --debug` lists every node")


def test_names_are_capped_per_group() -> None:
    items = [Unsupported("Cos", f"/Cos_{i}", "fpga", "not lowered") for i in range(MAX_NAMES + 1)]
    line = str(UnsupportedOpError("fpga", items)).splitlines()[1]
    shown = ", ".join(f"/Cos_{i}" for i in range(MAX_NAMES))
    assert line == f"  Cos ×{MAX_NAMES + 1}: {shown} … (+1) — not lowered"
    items = items[:MAX_NAMES]
    assert "(+" not in str(UnsupportedOpError("fpga", items))


def test_one_group_per_op_reason_and_hint() -> None:
    items = [Unsupported("Conv", "a", "fpga", "dilations=[2, 2]"), Unsupported("Conv", "b", "fpga", "groups=3"),
             Unsupported("Conv", "c", "fpga", "dilations=[2, 2]"), Unsupported("Conv", "d", "fpga", "groups=3", "h")]
    groups = group_unsupported(items)
    assert [(op, reason, hint, nodes) for op, reason, hint, nodes in groups] == [
        ("Conv", "dilations=[2, 2]", "", ["a", "c"]), ("Conv", "groups=3", "", ["b"]), ("Conv", "groups=3", "h", ["d"])]
    lines = str(UnsupportedOpError("fpga", items)).splitlines()
    assert lines[0] == "4 node(s) cannot be lowered to target 'fpga' (Conv ×4):"
    assert lines[1:] == ["  Conv ×2: a, c — dilations=[2, 2]", "  Conv ×1: b — groups=3",
                         "  Conv ×1: d — groups=3 (hint: h)"]


def test_one_node_is_one_line_naming_op_node_target_reason_and_hint() -> None:
    u = Unsupported("Transpose", "/Transpose", "fpga", "moves data", "fold it")
    assert str(UnsupportedOpError("fpga", [u])) == (
        "1 node(s) cannot be lowered to target 'fpga': Transpose node '/Transpose' on fpga: moves data (hint: fold it)")


def test_plain_string_items_are_grouped_by_their_text() -> None:
    assert str(UnsupportedOpError("finetune", ["Conv auto_pad='SAME'"])) == (
        "1 node(s) cannot be lowered to target 'finetune': Conv auto_pad='SAME'")
    lines = str(UnsupportedOpError("finetune", ["Conv auto_pad='SAME'"] * 2 + ["Pad mode"])).splitlines()
    assert lines == ["3 node(s) cannot be lowered to target 'finetune' (Conv auto_pad='SAME' ×2, Pad mode ×1):",
                     "  Conv auto_pad='SAME' ×2", "  Pad mode ×1"]


def test_the_error_survives_pickling_with_every_node() -> None:
    err = UnsupportedOpError("fpga", _mixed())
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is UnsupportedOpError and back.target == "fpga"
    assert back.unsupported == err.unsupported and str(back) == str(err)
