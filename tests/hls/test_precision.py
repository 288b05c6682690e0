"""accelc.hls.precision: integer bits from observed ranges, fixed-point type strings, accumulators."""

from __future__ import annotations

import re

import numpy as np
import pytest

from accelc.hls.precision import PrecisionPolicy, accum_type, fixed, integer_bits, result_type, weight_type

FIXED = re.compile(r"fixed<(\d+),(-?\d+),(\w+),(\w+)>")


def _parse(t: str) -> tuple[int, int, str, str]:
    m = FIXED.fullmatch(t)
    assert m, t
    return int(m[1]), int(m[2]), m[3], m[4]


@pytest.mark.parametrize(
    ("max_abs", "bits"),
    [
        (0.0, 1),
        (0.4, 1),  # [-1, 1) holds 0.4
        (0.5, 1),
        (1.0, 2),  # 1 itself needs [-2, 2)
        (1.5, 2),
        (31.9, 6),  # [-32, 32)
        (32.0, 7),  # 32 itself needs [-64, 64)
        (1e-9, 1),
    ],
)
def test_integer_bits(max_abs: float, bits: int) -> None:
    assert integer_bits(max_abs, 0) == bits
    assert integer_bits(max_abs, 2) == bits + 2  # headroom is added on top


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_integer_bits_of_unusable_ranges(bad: float) -> None:
    assert integer_bits(bad, 1) == 2


def test_integer_bits_always_hold_the_value() -> None:
    for v in np.geomspace(1e-4, 1e5, 400):
        i = integer_bits(float(v), 0)
        assert v < 2.0 ** (i - 1), v  # a signed type with i integer bits holds [-2^(i-1), 2^(i-1))
        assert i == 1 or v >= 2.0 ** (i - 2), v  # and one bit fewer would not


def test_fixed_strings() -> None:
    assert fixed(18, 6) == "fixed<18,6,RND,SAT>"
    assert fixed(26, 9, "TRN", "WRAP") == "fixed<26,9,TRN,WRAP>"
    assert fixed(16, 20) == "fixed<16,16,RND,SAT>"  # never more integer bits than total bits


def test_result_weight_and_accum_types() -> None:
    policy = PrecisionPolicy()
    assert result_type(31.9, policy) == f"fixed<{policy.width},{6 + policy.headroom},RND,SAT>"
    assert weight_type(0.4, policy) == f"fixed<{policy.weight_width},1,RND,SAT>"  # weights: no headroom
    for v in (0.0, 0.3, 1.0, 7.5, 100.0, 3000.0):
        rw, ri, _, rsat = _parse(result_type(v, policy))
        aw, ai, around, asat = _parse(accum_type(v, policy))
        assert aw > rw and aw == policy.width + policy.accum_extra
        assert ai > ri  # more integer bits than the result
        assert aw - ai >= rw - ri  # and at least as many fraction bits
        assert (around, asat) == ("TRN", "WRAP")
        assert rsat == "SAT"  # results saturate instead of wrapping


def test_custom_policy_and_to_dict() -> None:
    policy = PrecisionPolicy(width=12, weight_width=10, accum_extra=4, headroom=0)
    assert result_type(3.0, policy) == "fixed<12,3,RND,SAT>"
    assert accum_type(3.0, policy) == "fixed<16,5,TRN,WRAP>"
    assert weight_type(3.0, policy) == "fixed<10,3,RND,SAT>"
    assert policy.to_dict() == {"width": 12, "weight_width": 10, "accum_extra": 4, "headroom": 0}
    assert PrecisionPolicy(**policy.to_dict()) == policy
