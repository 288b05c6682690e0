"""examples/qat/survey.py (issue 16's closing table) formats its records into one row per model, with the
refusals as rows: checked on synthetic records, nothing compiled."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
# `examples` is not part of the installed package; it is imported from the checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.qat import survey  # noqa: E402


def _ok(acc: float, err: float, exact: float = 1.0, **extra) -> dict:
    return {"status": "compiled", "seconds": 7.25, "acc": acc, "max_err": err, "exact": exact, "agreement": 1.0,
            **extra}


def _refused(reason: str) -> dict:
    return {"status": "refused", "reason": reason, "error": reason + "\nmore", "at": "x.py:1", "seconds": 0.5}


TYPES = {"w": ["ap_fixed<2,1>"], "a": ["ap_ufixed<4,2>", "ap_fixed<18,5>"], "acc": ["ap_fixed<20,8>"]}
RECORDS = [
    {"model": "good", "executor_acc": 0.95, "fpga": _ok(0.95, 0.5, 0.75, types=TYPES), "cpu": _ok(0.95, 0.0),
     "hls4ml": _ok(0.94, 1.0)},
    {"model": "bipolar", "executor_acc": 0.9, "fpga": _refused("QonnxImportError: BipolarQuant | x"),
     "cpu": _refused("QonnxImportError: BipolarQuant | x"), "hls4ml": _refused("IndexError: list index")},
    {"model": "hls-wrong", "executor_acc": 0.96, "fpga": _ok(0.96, 0.0, types=TYPES), "cpu": _ok(0.96, 0.0),
     "hls4ml": _ok(0.1, 24.0)},
    {"model": "both-exact", "executor_acc": 0.95, "fpga": _ok(0.95, 0.0), "cpu": _ok(0.95, 0.0),
     "hls4ml": _ok(0.95, 0.0)},
    {"model": "broken", "executor": {"status": "failed", "reason": "RuntimeError: no"}},
]


def test_table_has_one_row_per_record_with_every_column() -> None:
    lines = survey.format_table(RECORDS).splitlines()
    assert lines[0] == "| " + " | ".join(survey.COLUMNS) + " |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[0] for r in rows] == [r["model"] for r in RECORDS]
    assert all(len(r) == len(survey.COLUMNS) for r in rows)
    good, bipolar, wrong, exact, broken = (dict(zip(survey.COLUMNS, r)) for r in rows)
    assert (good["fpga acc"], good["fpga max err"], good["fpga exact"], good["fpga compile s"]) == \
        ("0.950", "0.5", "75.0 %", "7.2")
    assert good["fpga types"] == "w ap_fixed<2,1>; a ap_ufixed<4,2> ap_fixed<18,5>; acc ap_fixed<20,8>"
    assert (good["cpu acc / max err"], good["hls4ml acc / max err"]) == ("0.950 / 0", "0.940 / 1")
    assert good["max err accelc / hls4ml"] == "0.5"
    assert bipolar["fpga acc"] == "refused: QonnxImportError: BipolarQuant / x"  # no stray column separator
    assert bipolar["max err accelc / hls4ml"] == "–"
    assert bipolar["hls4ml acc / max err"] == "refused: IndexError: list index"
    assert wrong["max err accelc / hls4ml"] == "hls4ml wrong (acc 0.100)"
    assert exact["max err accelc / hls4ml"] == "both exact"
    assert broken["executor acc"] == "executor failed: RuntimeError: no"


def test_types_come_from_the_projects_defines_header(tmp_path: Path) -> None:
    firmware = tmp_path / "hls" / "firmware"
    firmware.mkdir(parents=True)
    (firmware / "defines.h").write_text(
        "typedef ap_fixed<34,3,AP_RND,AP_SAT,0> input_t;\ntypedef ap_fixed<18,8> layer3_table_t;\n"
        "typedef ap_fixed<49,12> Dense_d1_accum_t;\ntypedef ap_fixed<6,1,AP_RND_CONV,AP_SAT,0> weight31_t;\n"
        "typedef ap_fixed<48,11,AP_RND,AP_SAT,0> dense_d1_bias_t;\ntypedef ap_uint<1> layer31_index;\n"
        "typedef ap_ufixed<4,2,AP_RND_CONV,AP_SAT,0> layer28_t;\ntypedef ap_uint<1> bias66_t;\n"
        "typedef ap_fixed<24,12,AP_RND,AP_SAT,0> model_default_t;\n"
        "typedef nnet::array<ap_fixed<18,4,AP_RND,AP_SAT,0>, 8*1> layer32_t;\n"
        "typedef ap_fixed<31,5,AP_RND,AP_SAT,0> node_dequantizelinear_6_scale_bias_t;\n")
    types = survey.fixed_types(SimpleNamespace(path=tmp_path, manifest={}))
    assert types == {"a": ["ap_ufixed<4,2>", "ap_fixed<18,4>", "ap_fixed<34,3>"], "acc": ["ap_fixed<49,12>"],
                     "w": ["ap_fixed<6,1>"], "b": ["ap_fixed<48,11>"], "s": ["ap_fixed<31,5>"]}
