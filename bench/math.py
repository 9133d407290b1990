"""Gas and precision of every function of contracts/math, against mpmath and published anchors.

Run with `make bench` (all benchmarks) or `python -m bench.math`. For each function it draws 400
inputs over the realistic domain (seeded), measures the gas of the internal call with
bench/harness/MathGas.vy (msg.gas read around the call, minus the same frame around a plain
copy), and the error against 60-digit mpmath. Writes bench/results/math.json.

Anchors (gas of the equivalent function, as published or measured by their authors):
snekmate's Vyper wad_exp ~810 and wad_ln ~1,400-1,650; Solady's expWad ~500 (Solidity);
Lyra v2's Solidity normal CDF ~1,800 and Black-76 ~4,500.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from typing import Any

import mpmath as mp

from bench.common import load, table, write_result
from tests import mp_reference as ref

WAD = 10**18
N = 400
COMMAND = "make bench  (python -m bench.math)"

# name: (goal gas, anchor name, anchor gas)
GOALS: dict[str, tuple[int, str, int]] = {
    "exp_wad": (700, "snekmate wad_exp", 810),
    "ln_wad": (1_200, "snekmate wad_ln", 1_400),
    "sqrt_wad": (600, "-", 0),
    "cdf": (1_800, "Lyra v2 normal CDF", 1_800),
    "pdf": (1_200, "-", 0),
    "price": (5_000, "Lyra v2 Black-76", 4_500),
    "greeks": (7_000, "-", 0),
}
ERROR_GOALS = {
    "exp_wad": "1e-17 rel + 2 wei",
    "ln_wad": "1e-17 rel + 2 wei",
    "sqrt_wad": "exact floor",
    "cdf": "20 wei",
    "pdf": "20 wei",
    "price": "1e-15 F + 10 wei",
    "greeks": "price as above",
}


def _inputs(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    def option() -> tuple[int, int, int, int, bool]:
        forward = int(10 ** rng.uniform(18, 24))
        strike = int(forward * math.exp(rng.uniform(-1.5, 1.5)))
        tau = rng.randint(WAD // 365, 2 * WAD)
        sigma = rng.randint(WAD // 10, 2 * WAD)
        return forward, strike, tau, sigma, rng.random() < 0.5

    return {
        "exp_wad": [(rng.randint(-41 * WAD, 130 * WAD),) for _ in range(N)],
        "ln_wad": [(int(10 ** rng.uniform(0, 76)),) for _ in range(N)],
        "sqrt_wad": [(int(10 ** rng.uniform(0, 58)),) for _ in range(N)],
        "cdf": [(rng.randint(-8 * WAD, 8 * WAD),) for _ in range(N)],
        "pdf": [(rng.randint(-8 * WAD, 8 * WAD),) for _ in range(N)],
        "price": [option() for _ in range(N)],
        "greeks": [option() for _ in range(N)],
    }


def _errors() -> dict[str, Callable[[tuple[Any, ...], int], float]]:
    """Per function: the error of a result as a fraction of its goal tolerance (<= 1 meets it)."""

    def rel(exact: mp.mpf, got: int) -> float:
        return float(abs(got - exact) / (abs(exact) * mp.mpf("1e-17") + 2))

    def price(args: tuple[Any, ...], got: int) -> float:
        return float(abs(got - ref.black76(*args)["price"]) / (mp.mpf("1e-15") * args[0] + 10))

    return {
        "exp_wad": lambda a, got: rel(ref.exp(a[0]), got),
        "ln_wad": lambda a, got: rel(ref.ln(a[0]), got),
        "sqrt_wad": lambda a, got: float(got != ref.sqrt(a[0])),
        "cdf": lambda a, got: float(abs(got - ref.cdf(a[0])) / 20),
        "pdf": lambda a, got: float(abs(got - ref.pdf(a[0])) / 20),
        "price": price,
        "greeks": price,
    }


def main() -> dict[str, Any]:
    harness = load("bench/harness/MathGas.vy")
    baseline = {
        "int": harness.gas_baseline_int(0)[1],
        "uint": harness.gas_baseline_uint(0)[1],
        "option": harness.gas_baseline_option(1, 1, 1, 1, True)[1],
    }
    kind = {"exp_wad": "int", "ln_wad": "int", "cdf": "int", "pdf": "int", "sqrt_wad": "uint"}
    errors = _errors()
    rng = random.Random(20261124)
    results: dict[str, Any] = {}
    rows = []
    for name, inputs in _inputs(rng).items():
        fn = getattr(harness, f"gas_{name}")
        base = baseline[kind.get(name, "option")]
        gas, errs = [], []
        for args in inputs:
            value, used = fn(*args)
            gas.append(used - base)
            errs.append(errors[name](args, value))
        goal, anchor, anchor_gas = GOALS[name]
        median = int(statistics.median(gas))
        results[name] = {
            "gas_median": median,
            "gas_max": max(gas),
            "gas_goal": goal,
            "anchor": anchor if anchor_gas else None,
            "anchor_gas": anchor_gas or None,
            "ratio_vs_anchor": round(median / anchor_gas, 3) if anchor_gas else None,
            "max_error_vs_goal": round(max(errs), 4),
            "error_goal": ERROR_GOALS[name],
            "samples": len(inputs),
        }
        rows.append(
            (
                name,
                median,
                max(gas),
                goal,
                anchor if anchor_gas else "-",
                anchor_gas or None,
                results[name]["ratio_vs_anchor"],
                f"{max(errs):.3g}",
                ERROR_GOALS[name],
            )
        )
    print(
        table(
            (
                "function",
                "gas med",
                "gas max",
                "gas goal",
                "anchor",
                "anchor gas",
                "ours/anchor",
                "max err/goal",
                "error goal",
            ),
            rows,
        )
    )
    path = write_result(
        "math",
        {
            "functions": results,
            "method": "msg.gas around the internal call minus an empty "
            "frame; max_error_vs_goal = max |ours - mpmath| / "
            "goal tolerance (<= 1 meets the goal)",
        },
        COMMAND,
    )
    print(f"wrote {path.relative_to(path.parents[2])}")
    return results


if __name__ == "__main__":
    main()
