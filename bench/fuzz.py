"""Speed of the stateful fuzz suite: steps per second of the main machine on the revm harness.

The workload is tests/fuzz/stateful/machines.py `ProtocolMachine` (every protocol action, four
traders, an operator, an outsider and a backstop bidder, portfolios up to 8 positions over
several expiries, calls and puts) with its invariants and post-conditions on, exactly as
`pytest tests/fuzz` runs it: EXAMPLES examples of STEPS steps, Hypothesis' generate phase
only, derandomised (the same sequence each repeat). The deployment (compiling the contracts,
~20 s) happens once, before the clock starts; each example starts from a snapshot.

`steps_per_s` = rule executions per second of wall clock, best of REPEATS (`steps_per_cpu_s`:
per second of this process' CPU time, what an idle machine gives; the two differ when other
jobs share the cores, see `load_average_at_start`); a step includes
Hypothesis' own work (choosing the rule, drawing its inputs), the rule's transactions, the
post-conditions and every invariant after it. The anchor is Medusa's ~1,776 calls/s (a Go
fuzzer calling a Solidity contract, no invariant in Python); the goal is >= 500 steps/s.

Also written: `invariants` (the number of distinct properties the suite checks, all machines),
their names, fills and the largest portfolio reached, contract health reads and mirror checks.

Writes bench/results/fuzz.json. Run: `.venv/bin/python -m bench.fuzz`.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from bench.common import table, write_result

EXAMPLES = 100
STEPS = 50
REPEATS = 3
ANCHOR = ("Medusa (calls/s)", 1776)
GOAL = 500
COMMAND = ".venv/bin/python -m bench.fuzz"


def run_once(machine: type, examples: int, steps: int) -> dict[str, Any]:
    """Run `examples` examples of `machine` and return the wall time and the suite's counters."""
    from tests.fuzz.stateful.base import STATS

    before = dict(STATS)
    STATS["max_positions"] = 0
    config = settings(
        max_examples=examples,
        stateful_step_count=steps,
        phases=(Phase.generate,),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    t0, c0 = time.perf_counter(), time.process_time()
    run_state_machine_as_test(machine, settings=config)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = {k: STATS[k] - before[k] for k in STATS if k != "max_positions"}
    counts["max_positions"] = STATS["max_positions"]
    return {"seconds": seconds, "cpu_seconds": cpu, **counts}


def main() -> int:
    from tests.fuzz.stateful import machines
    from tests.fuzz.stateful.base import properties
    from tests.fuzz.stateful.world import world

    load = list(os.getloadavg())
    t0 = time.perf_counter()
    world()  # compile and deploy once, outside the clock
    setup = time.perf_counter() - t0
    runs = [run_once(machines.ProtocolMachine, EXAMPLES, STEPS) for _ in range(REPEATS)]
    best = min(runs, key=lambda r: r["seconds"] / max(r["steps"], 1))
    steps_per_s = best["steps"] / best["seconds"]
    steps_per_cpu_s = max(r["steps"] / r["cpu_seconds"] for r in runs)
    names = sorted({n for m in machines.ALL_MACHINES for n in properties(m)})
    data: dict[str, Any] = {
        "engine": "revm (pyrevm)",
        "machine": "ProtocolMachine",
        "steps_per_s": round(steps_per_s, 1),
        "steps_per_cpu_s": round(steps_per_cpu_s, 1),
        "goal_steps_per_s": GOAL,
        "anchor": ANCHOR[0],
        "anchor_value": ANCHOR[1],
        "ratio_vs_anchor": round(steps_per_s / ANCHOR[1], 3),
        "invariants": len(names),
        "invariant_names": names,
        "steps": best["steps"],
        "examples": best["examples"],
        "fills": best["fills"],
        "max_positions": best["max_positions"],
        "health_reads": best["health_reads"],
        "mirror_checks": best["mirror_checks"],
        "seconds": round(best["seconds"], 3),
        "setup_seconds": round(setup, 1),
        "repeats": REPEATS,
        "steps_per_s_all_repeats": [round(r["steps"] / r["seconds"], 1) for r in runs],
        "timing": f"wall clock, best of {REPEATS}, {EXAMPLES} examples x {STEPS} steps each",
        "load_average_at_start": load,
        "versions": {
            "hypothesis": metadata.version("hypothesis"),
            "pyrevm": metadata.version("pyrevm"),
            "vyper": metadata.version("vyper"),
        },
    }
    print(
        table(
            ["stateful fuzzing", "kappa", "anchor", "ratio", "goal"],
            [
                [
                    "steps/s, main machine (up to 8 positions)",
                    data["steps_per_s"],
                    ANCHOR[1],
                    data["ratio_vs_anchor"],
                    GOAL,
                ],
                [
                    "steps per CPU second (same runs)",
                    data["steps_per_cpu_s"],
                    ANCHOR[1],
                    round(steps_per_cpu_s / ANCHOR[1], 3),
                    GOAL,
                ],
            ],
        )
    )
    print(
        f"{data['invariants']} properties; {best['steps']} steps over {best['examples']} examples, "
        f"{best['fills']} fills, largest portfolio {best['max_positions']} positions, "
        f"{best['health_reads']} contract health reads (each checked against keeper/margin.py); "
        f"engine {data['engine']}; load average {load[0]:.2f}"
    )
    path = write_result("fuzz", data, COMMAND)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
