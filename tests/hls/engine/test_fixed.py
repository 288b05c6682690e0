"""accelc.hls.engine.fixed against the Xilinx ap_types headers hls4ml ships, compiled with g++.

One module-scoped g++ build (a few seconds) casts every test value in C++: `T(d)` for doubles into ~130 types
(every quantization x overflow mode, signed and unsigned, at shapes with negative integer bits and with more
integer bits than width), and `T(src)` for ap_fixed<128, 128 - frac> sources holding exact integer codes
(up to +-2^127, far beyond float64) into ~70 targets. The numpy casts must give the same float64 values.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from accelc.hls.engine.fixed import (
    OVERFLOW,
    QUANTIZATION,
    EngineUnsupported,
    FixedType,
    cast,
    cast_int_codes,
    parse_type,
)


def _ap_types_dir() -> Path:
    spec = importlib.util.find_spec("hls4ml")  # locates the package without importing it
    assert spec is not None and spec.submodule_search_locations, "hls4ml is a dependency"
    return Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado" / "ap_types"


# ---------------------------------------------------------------------------------------------------- types

SHAPES = [(8, 3), (6, 0), (5, -2), (10, 12), (18, 5), (26, 8)]


def _spell(width: int, integer: int, signed: bool, q: str | None = None, o: str | None = None) -> str:
    modes = "".join(f",AP_{m}" for m in (q, o) if m is not None)
    return f"ap_{'' if signed else 'u'}fixed<{width},{integer}{modes}>"


def _cast_types() -> list[str]:
    """Every quantization x overflow mode x signedness, each at two of SHAPES (every shape meets every mode)."""
    out = []
    k = 0
    for q in QUANTIZATION:
        for o in OVERFLOW:
            for signed in (True, False):
                for shape in (SHAPES[k % 6], SHAPES[(k + 3) % 6]):
                    out.append(_spell(*shape, signed, q, o))
                k += 1
    out += [
        # integers
        "ap_int<8>", "ap_uint<1>", "ap_uint<4>", "ap_int<16>",
        # default modes, partly written modes, the N field, defines.h spellings
        "ap_fixed<16,6>", "ap_ufixed<8,0>", "ap_fixed<8,3,AP_RND>", "ap_ufixed<10,12>", "ap_fixed<5,-2>",
        "ap_fixed<18,5,AP_RND,AP_SAT,0>", "ap_fixed<1,1>", "ap_ufixed<1,0,AP_RND>", "ap_fixed<2,0,AP_RND_CONV,AP_SAT>",
        # the widest a float64 holds exactly
        "ap_fixed<53,20,AP_RND_CONV,AP_SAT>", "ap_ufixed<53,10,AP_RND,AP_WRAP>", "ap_fixed<32,16,AP_RND,AP_SAT_SYM>",
    ]
    return out


CAST_TYPES = _cast_types()


def _exact(x: float, want: Fraction) -> bool:
    return np.isfinite(x) and Fraction(x) == want


def cast_values(t: FixedType, seed: int) -> list[float]:
    """Ties at half an lsb (and their float64 neighbours), the range ends and one lsb beyond, zeros, overflowing
    magnitudes, tiny and subnormal values, random values at several scales; all exact float64s."""
    lsb = Fraction(2) ** -t.frac
    vals: list[float] = [0.0, -0.0]
    grid = [t.lo_code, t.lo_code + 1, -1, 0, 1, 2, 3, t.hi_code - 1, t.hi_code, -t.hi_code]
    rng = np.random.default_rng(seed)
    grid += [int(c) for c in rng.integers(t.lo_code, t.hi_code + 1, size=4)]
    for c in grid:  # values on the grid and one lsb beyond the ends
        for code in (c, c - 1, c + 1):
            x = float(code * lsb)
            if _exact(x, code * lsb):
                vals.append(x)
    for c in grid + [-2, -3, t.lo_code - 1, t.hi_code + 1]:  # ties and their neighbours
        tie = (c + Fraction(1, 2)) * lsb
        x = float(tie)
        if _exact(x, tie):
            vals += [x, float(np.nextafter(x, np.inf)), float(np.nextafter(x, -np.inf))]
    span = float((1 << t.width) * lsb)  # WRAP period
    for m in (1, 2.5, 3.75, 0.5, 2**20 + 0.25):
        vals += [m * span, -m * span]
    vals += [span + float(lsb), -span - float(lsb)]
    for big in (1e6, 1e20, 1e300, 2.0**60, 2.0**60 + 2.0**8, 2.0**53 + 2.0, 1.5 * 2.0**52):
        vals += [big, -big]
    vals += [1e-300, -1e-300, 5e-324, -5e-324, 2.0**-1060, -(2.0**-1060)]  # tiny, subnormal
    vals += [0.3, -0.3, 0.7, -0.7, 3.7, -3.7, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5]
    for scale in (float(lsb), 1.0, t.max_abs, 3 * t.max_abs, 1e3 * t.max_abs):
        vals += [float(v) for v in rng.uniform(-scale, scale, size=6)]
    return list({v.hex(): v for v in vals}.values())  # distinct, 0.0 and -0.0 both kept


# ----------------------------------------------------------------------------------------------- int codes

BIG_FRAC = 30  # the source fraction of most int-code cases: 32 bits of rounding into <5,-2>
CODE_TARGETS: list[tuple[int, str]] = (
    [(BIG_FRAC, _spell(8, 3, True, q, o)) for q in QUANTIZATION for o in OVERFLOW]
    + [(BIG_FRAC, _spell(6, 0, False, q, o)) for q in QUANTIZATION for o in OVERFLOW]
    + [(BIG_FRAC, s) for s in ("ap_fixed<5,-2,AP_RND_CONV,AP_SAT>", "ap_fixed<10,12,AP_RND,AP_WRAP>",
                               "ap_ufixed<10,12,AP_TRN_ZERO,AP_SAT_SYM>", "ap_fixed<18,5,AP_RND,AP_SAT,0>",
                               "ap_fixed<26,8,AP_RND_INF,AP_SAT_SYM>", "ap_fixed<16,6>", "ap_int<8>", "ap_uint<4>",
                               "ap_fixed<53,20,AP_RND_ZERO,AP_SAT_ZERO>")]
    # no rounding: the source has as many or fewer fraction bits than the target (a left shift, or none)
    + [(5, "ap_fixed<8,3,AP_RND,AP_SAT>"), (5, "ap_fixed<8,3,AP_RND,AP_WRAP>"), (2, "ap_fixed<8,3,AP_TRN,AP_SAT_SYM>"),
       (-4, "ap_ufixed<6,0,AP_RND,AP_SAT_ZERO>"), (-4, "ap_fixed<10,12,AP_TRN,AP_WRAP>"),
       (0, "ap_int<8>"), (-3, "ap_uint<4>")]
)
INT128_MIN, INT128_MAX = -(1 << 127), (1 << 127) - 1


def int_codes(frac: int, t: FixedType, seed: int) -> list[int]:
    """Codes (value = code * 2^-frac) at ties of t's lsb and around, at t's range ends, around +-2^70 and +-2^100,
    at the int128 limits, and random ones of every bit length: Python ints, most far beyond 2^53."""
    shift = frac - t.frac
    div = 1 << shift if shift > 0 else 1
    half = div // 2
    codes = {0, 1, -1, INT128_MIN, INT128_MAX, INT128_MIN + 1, INT128_MAX - half}
    ends = [t.lo_code - 1, t.lo_code, t.lo_code + 1, -t.hi_code, -3, -2, -1, 0, 1, 2, 3, t.hi_code, t.hi_code + 1]
    for c in ends:
        for off in (0, half, half - 1, half + 1, div - 1):
            codes.add(c * div + off)
    for base in (1 << 70, 1 << 100, 1 << 126, (1 << t.width) * div * 5):
        for off in (0, 1, 12345, half, half + 1, div + half):
            codes |= {base + off, -base + off, -base - off}
    rnd = random.Random(seed)
    for _ in range(40):
        bits = rnd.randint(1, 126)
        codes.add(rnd.choice((-1, 1)) * rnd.getrandbits(bits))
    for _ in range(8):  # exact ties at random magnitudes
        codes.add(rnd.randint(-(1 << 100), 1 << 100) * div + half)
    return sorted(c for c in codes if INT128_MIN <= c <= INT128_MAX)


# ------------------------------------------------------------------------------------------------ the build

CPP_HEAD = r"""
#include <cstdio>
#include "ap_fixed.h"
#include "ap_int.h"

template <class T> static void cast_doubles(const double* v, int n) {
  for (int i = 0; i < n; ++i) printf("%.17g\n", T(v[i]).to_double());
}

// the code hi * 2^64 + lo (0 <= lo < 2^64) as ap_fixed<128, 128 - FRAC>, cast to T
template <int FRAC, class T> static void cast_codes(const long long* hi, const unsigned long long* lo, int n) {
  for (int i = 0; i < n; ++i) {
    ap_int<128> v = hi[i];
    v <<= 64;
    v |= ap_int<128>(ap_uint<64>(lo[i]));
    ap_fixed<128, 128 - FRAC> src;
    src.V = v.V;
    T y = src;
    printf("%.17g\n", y.to_double());
  }
}
"""


def _cpp_type(spelling: str) -> str:
    return spelling.replace(">", " >")  # no '>>' when nested in a template argument list


def _build_source(cast_cases, code_cases) -> str:
    lines = [CPP_HEAD, "int main() {"]
    for i, (spelling, values) in enumerate(cast_cases):
        lits = ", ".join(v.hex() for v in values)
        lines.append(f"  {{ static const double v{i}[] = {{{lits}}};")
        lines.append(f"    cast_doubles<{_cpp_type(spelling)} >(v{i}, {len(values)}); }}")
    for i, (frac, spelling, codes) in enumerate(code_cases):
        his = ", ".join(f"{c >> 64}LL" if c >> 64 != -(1 << 63) else "(-9223372036854775807LL - 1)" for c in codes)
        los = ", ".join(f"{c & ((1 << 64) - 1)}ULL" for c in codes)
        lines.append(f"  {{ static const long long h{i}[] = {{{his}}};")
        lines.append(f"    static const unsigned long long l{i}[] = {{{los}}};")
        lines.append(f"    cast_codes<{frac}, {_cpp_type(spelling)} >(h{i}, l{i}, {len(codes)}); }}")
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


class CppResults:
    """The cases with the C++ results (a class, so that pytest does not print thousands of values on a failure)."""

    def __init__(self, cast_res, code_res):
        self.cast_res, self.code_res = cast_res, code_res

    def __repr__(self) -> str:
        return f"<C++ casts: {len(self.cast_res)} double cases, {len(self.code_res)} int-code cases>"


@pytest.fixture(scope="module")
def cpp(tmp_path_factory) -> CppResults:
    """(cast cases, int-code cases), each case with the C++ results: one g++ -O1 build, one run."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    ap_types = _ap_types_dir()
    assert (ap_types / "ap_fixed.h").is_file(), ap_types
    cast_cases = [(s, cast_values(parse_type(s), zlib.crc32(s.encode()))) for s in CAST_TYPES]
    code_cases = [(f, s, int_codes(f, parse_type(s), zlib.crc32(f"{f}{s}".encode()))) for f, s in CODE_TARGETS]
    build = tmp_path_factory.mktemp("ap_casts")
    (build / "casts.cpp").write_text(_build_source(cast_cases, code_cases))
    subprocess.run(["g++", "-O1", "-w", f"-I{ap_types}", "casts.cpp", "-o", "casts"], cwd=build, check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run([str(build / "casts")], check=True, capture_output=True, text=True, timeout=60).stdout
    results = iter([float(line) for line in out.split()])
    cast_res = [(s, vals, np.array([next(results) for _ in vals])) for s, vals in cast_cases]
    code_res = [(f, s, codes, np.array([next(results) for _ in codes])) for f, s, codes in code_cases]
    assert next(results, None) is None, "the C++ program printed more lines than values"
    return CppResults(cast_res, code_res)


# --------------------------------------------------------------------------------- known bugs in fixed.py
# Each predicate picks out (type, input) cases where fixed.py is known to differ from the headers. The main tests
# check everything else; the strict xfail tests check exactly these, so they start passing (and fail as XPASS)
# once fixed.py is fixed: then delete the predicate.


def _underflow_to_zero_bug(t: FixedType, spelling: str, x: float) -> bool:
    """TRN of a negative subnormal into a type with fewer than 0 fraction bits (e.g. -5e-324 into ap_fixed<10,12>):
    np.ldexp(x, frac) underflows to -0.0, so the floor is 0 where the header gives -lsb (-4)."""
    return t.rounding == "TRN" and (t.signed or t.overflow == "WRAP") and t.frac < 0 and x < 0 and x * 2.0**t.frac == 0


CAST_BUGS = {
    "subnormal_underflow_in_ldexp": _underflow_to_zero_bug,  # left alone: no model value is a subnormal
}
CODE_BUGS: dict = {}  # none known


# ---------------------------------------------------------------------------------------------------- tests


def _cast_mismatches(cpp, select) -> tuple[list[str], int]:
    """Mismatches (grouped by type) among the cast cases select(t, spelling, x) picks, and how many it picked."""
    cast_res = cpp.cast_res
    report, checked = [], 0
    for spelling, values, want in cast_res:
        t = parse_type(spelling)
        with np.errstate(over="ignore", invalid="ignore"):  # 1e300 * 2^F overflows (see wrap_of_codes_beyond_2_53)
            got = cast(np.array(values), t, from_double=True)  # T(double)
        bad = []
        for x, w, g in zip(values, want, got):
            if not select(t, spelling, x):
                continue
            checked += 1
            if not w == g:
                bad.append(f"    x={x!r} ({x.hex()}): expected {float(w)!r}, got {float(g)!r}")
        if bad:
            report.append(f"  {spelling} ({t}): {len(bad)} of {len(values)} differ\n" + "\n".join(bad[:12]))
    return report, checked


def test_cast_matches_cpp(cpp):
    """cast(x, parse_type(T)) == (double)T(x) for every type and value, but for the known bugs below."""
    def clean(t, spelling, x):
        return not any(bug(t, spelling, x) for bug in CAST_BUGS.values())

    report, checked = _cast_mismatches(cpp, clean)
    assert checked > 10000
    assert not report, f"cast differs from the ap_types headers for {len(report)} types:\n" + "\n".join(report)


@pytest.mark.parametrize("bug", sorted(CAST_BUGS))
def test_cast_known_bugs(cpp, bug, request):
    request.applymarker(pytest.mark.xfail(strict=True, reason=f"fixed.py bug: {bug}: {CAST_BUGS[bug].__doc__}"))
    def only(t, spelling, x):  # this bug and no other, so fixing one flips exactly its test
        return CAST_BUGS[bug](t, spelling, x) and not any(b(t, spelling, x) for k, b in CAST_BUGS.items() if k != bug)

    report, checked = _cast_mismatches(cpp, only)
    assert checked > 0
    assert not report, f"{bug}:\n" + "\n".join(report)


def _code_mismatches(cpp, select, as_int64=False) -> tuple[list[str], int]:
    code_res = cpp.code_res
    report, checked = [], 0
    for frac, spelling, codes, want in code_res:
        t = parse_type(spelling)
        keep = [i for i, c in enumerate(codes) if select(t, spelling, frac, c) and (not as_int64 or abs(c) < 1 << 62)]
        if not keep:
            continue
        sub = [codes[i] for i in keep]
        arr = np.array(sub, dtype=np.int64) if as_int64 else np.array(sub, dtype=object)
        got = cast_int_codes(arr, frac, t)
        checked += len(keep)
        bad = [f"    code={c} * 2^-{frac}: expected {float(w)!r}, got {float(g)!r}"
               for c, w, g in zip(sub, want[keep], got) if not w == g]
        if bad:
            report.append(f"  {spelling} from frac={frac}: {len(bad)} of {len(keep)} differ\n" + "\n".join(bad[:12]))
    return report, checked


def _code_clean(t, spelling, frac, c):
    return not any(bug(t, spelling, frac, c) for bug in CODE_BUGS.values())


def test_cast_int_codes_matches_cpp(cpp):
    """cast_int_codes(codes, frac, T) == (double)T(ap_fixed<128,128-frac> holding code), codes up to +-2^127.
    Every code, the huge ones included, is checked against C++ (ap_int<128> built from two 64-bit halves)."""
    report, checked = _code_mismatches(cpp, _code_clean)
    assert checked > 5000
    assert not report, f"cast_int_codes differs from the ap_types headers for {len(report)} cases:\n" + "\n".join(
        report)


def test_cast_int_codes_int64_input(cpp):
    """The same casts from int64 arrays (|code| < 2^62) as from Python-int object arrays."""
    report, checked = _code_mismatches(cpp, _code_clean, as_int64=True)
    assert checked > 2000
    assert not report, "cast_int_codes (int64 codes) differs:\n" + "\n".join(report)


def test_every_mode_and_shape_is_covered():
    seen = {(t.rounding, t.overflow, t.signed) for t in map(parse_type, CAST_TYPES)}
    assert seen >= {(q, o, s) for q in QUANTIZATION for o in OVERFLOW for s in (True, False)}
    for shape in SHAPES:
        ts = [t for t in map(parse_type, CAST_TYPES) if (t.width, t.integer) == shape]
        assert {t.rounding for t in ts} == set(QUANTIZATION), shape
        assert {t.overflow for t in ts} == set(OVERFLOW), shape
        assert {t.signed for t in ts} == {True, False}, shape
    assert 110 <= len(CAST_TYPES) <= 150


# ------------------------------------------------------------------------------------------------ parse_type


@pytest.mark.parametrize(("text", "want"), [
    ("ap_fixed<18,5,AP_RND,AP_SAT,0>", FixedType(18, 5, True, "RND", "SAT")),
    ("ap_fixed<26,8>", FixedType(26, 8, True, "TRN", "WRAP")),
    ("ap_fixed< 26 , 8 >", FixedType(26, 8, True, "TRN", "WRAP")),
    ("ap_ufixed<8,0,AP_RND_CONV,AP_SAT_SYM>", FixedType(8, 0, False, "RND_CONV", "SAT_SYM")),
    ("ap_fixed<8,3,AP_RND>", FixedType(8, 3, True, "RND", "WRAP")),
    ("ap_fixed<5,-2,AP_TRN_ZERO,AP_SAT_ZERO>", FixedType(5, -2, True, "TRN_ZERO", "SAT_ZERO")),
    ("ap_ufixed<10,12>", FixedType(10, 12, False, "TRN", "WRAP")),
    ("ap_int<8>", FixedType(8, 8, True, "TRN_ZERO", "WRAP", integer_type=True)),
    ("ap_uint<1>", FixedType(1, 1, False, "TRN_ZERO", "WRAP", integer_type=True)),
])
def test_parse_type(text, want):
    assert parse_type(text) == want


def test_parse_type_properties():
    t = parse_type("ap_fixed<5,-2,AP_RND,AP_SAT>")
    assert (t.frac, t.lo_code, t.hi_code, t.lsb) == (7, -16, 15, 2.0**-7)
    t = parse_type("ap_ufixed<10,12>")
    assert (t.frac, t.lo_code, t.hi_code, t.lsb, t.max_abs) == (-2, 0, 1023, 4.0, 4092.0)


@pytest.mark.parametrize("text", [
    "float", "double", "half", "ap_fixed<18,5,AP_RND,AP_SAT,2>", "ap_fixed<8,3,AP_TRN,AP_WRAP_SM>",
    "ap_fixed<8,3,AP_ROUND>", "ap_fixed<8>", "ap_float<8,23>", "",
])
def test_parse_type_rejects(text):
    with pytest.raises(EngineUnsupported):
        parse_type(text)
