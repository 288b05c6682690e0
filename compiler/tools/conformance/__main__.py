"""`python -m accelc.tools.conformance [--full|--fast] [--jobs 2] [--json out.json] [--ops Conv,Clip]`: run the suite,
print the per-op table (markdown) and every wrong or crashed case. Exit 1 when accelc got any case wrong or
crashed (hls4ml-direct is measured, not judged)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from accelc.tools.conformance.cases import catalogue
from accelc.tools.conformance.run import RUNNERS, run_cases
from accelc.tools.conformance.table import failure_lines, failures, markdown


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m accelc.tools.conformance", description=__doc__.split("\n\n")[0])
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--full", action="store_true", help="every case (default)")
    scope.add_argument("--fast", action="store_true", help="the representative slice that `make test` runs")
    p.add_argument("--jobs", type=int, default=2, help="cases run at once, each in its own process")
    p.add_argument("--json", type=Path, help="write every outcome here")
    p.add_argument("--ops", help="comma-separated ops (Case.op), e.g. Conv,Clip")
    p.add_argument("--runners", default=",".join(RUNNERS), help="fpga,cpu,hls4ml")
    p.add_argument("--workdir", type=Path, help="where models and artifacts go (default: a temporary dir)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    a = p.parse_args(argv)
    cases = catalogue(fast=a.fast, ops=a.ops.split(",") if a.ops else None)
    if a.list:
        print("\n".join(f"{c.op:32} {c.name}{' (fast)' if c.fast else ''}" for c in cases))
        return 0
    runners = [r for r in a.runners.split(",") if r]
    unknown = set(runners) - set(RUNNERS)
    if unknown or not cases:
        print(f"error: unknown runner(s) {sorted(unknown)}" if unknown else "error: no case selected", file=sys.stderr)
        return 2
    start, done = time.perf_counter(), []

    def progress(res) -> None:
        done.append(res)
        summary = " ".join(f"{o.runner}={o.cls}" for o in res)
        print(f"[{len(done)}/{len(cases)} {time.perf_counter() - start:6.0f}s] {res[0].case}: {summary}",
              file=sys.stderr, flush=True)

    outcomes = run_cases(cases, runners, a.jobs, a.workdir, progress)
    wall = time.perf_counter() - start
    print(markdown(outcomes))
    print(f"\n{len(cases)} cases, {len(runners)} runners, {wall:.0f} s wall with --jobs {a.jobs}")
    bad = failure_lines(outcomes)
    print("\naccelc wrong/crashed cases:" if bad else "\naccelc: no wrong or crashed case")
    print("\n".join(bad))
    if a.json:
        a.json.write_text(json.dumps({"wall_seconds": wall, "outcomes": [o.to_dict() for o in outcomes]}, indent=1))
    return 1 if failures(outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
