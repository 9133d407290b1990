"""Routing benchmark: the closed-form optimal split vs greedy, single-pool and a generic solver.

Over CASES random 2-6-pool cases (seeded), it compares the output of `keeper.routing.optimal_split`
with three anchors, all evaluated in 50-digit mpmath on the unrounded pool formula
y*g*a / (x + g*a):

- greedy: Uniswap-style splitting in 5% steps: the order is cut into 20 equal chunks and each
  chunk goes to the pool whose output grows most from it, given the chunks already placed
  (what Uniswap's smart order router does with its 5% distribution);
- single pool: the whole order in the pool that pays most for it;
- a generic convex solver (tests/routing_reference.py, shared with the routing tests): the KKT
  conditions solved in mpmath from nothing but each pool's first and second derivatives
  (safeguarded Newton for each pool's leg at a given marginal level, safeguarded Newton on
  log(lambda) for the budget), to ~1e-40 relative; it never uses the closed form.

Cases: pool prices within +-0.5% of each other, depths log-uniform over two decades, fees drawn
from {1, 5, 30, 100} bps, order sizes log-uniform from 0.1% to 50% of the total input-side depth.
Ratios are in basis points of the anchor's output; the optimal split's float legs are rescaled
in mpmath to the exact budget before evaluation (removing float rounding of the sum only).

Writes bench/results/routing.json and prints a table per pool count. Run:
`.venv/bin/python -m bench.routing`.
"""

from __future__ import annotations

from statistics import median

import mpmath as mp
import numpy as np

from bench.common import write_result
from keeper.routing import optimal_split
from tests.routing_reference import DPS, out, reference_split

COMMAND = "python -m bench.routing"
CASES = 240
SEED = 20_240_601
GREEDY_STEPS = 20
FEES_BPS = (1, 5, 30, 100)


def greedy_split(amount: float, x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> list[mp.mpf]:
    """Uniswap-style: GREEDY_STEPS equal chunks, each to the pool with the largest increment."""
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        chunk = mp.mpf(amount) / GREEDY_STEPS
        legs = [mp.mpf(0)] * len(pools)
        for _ in range(GREEDY_STEPS):
            gains = [out(p, a + chunk) - out(p, a) for p, a in zip(pools, legs, strict=True)]
            best = max(range(len(pools)), key=gains.__getitem__)
            legs[best] += chunk
        return legs


def totalout(legs: list[mp.mpf], x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> mp.mpf:
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        return mp.fsum(out(p, mp.mpf(a)) for p, a in zip(pools, legs, strict=True))


def random_case(rng: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    n = int(rng.integers(2, 7))
    depth = 10.0 ** rng.uniform(1.0, 3.0, n)
    price = 3000.0 * (1.0 + rng.uniform(-0.005, 0.005, n))
    fees = rng.choice(np.array(FEES_BPS, dtype=np.float64), n) / 10_000
    amount = float(depth.sum() * 10.0 ** rng.uniform(-3.0, np.log10(0.5)))
    return amount, depth, depth * price, fees


def _bps(a: mp.mpf, b: mp.mpf) -> float:
    # + 0.0 turns a rounded -0.0 into 0.0.
    return round(float((a - b) / b * 10_000), 9) + 0.0


def run(cases: int = CASES, seed: int = SEED) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(cases):
        amount, x, y, fees = random_case(rng)
        legs = optimal_split(amount, x, y, fees)
        with mp.workdps(DPS):
            legs_mp = [mp.mpf(float(v)) for v in legs]
            scale = mp.mpf(amount) / mp.fsum(legs_mp)
            legs_mp = [v * scale for v in legs_mp]
            opt = totalout(legs_mp, x, y, fees)
            ref = totalout(reference_split(amount, x, y, fees), x, y, fees)
            greedy = totalout(greedy_split(amount, x, y, fees), x, y, fees)
            single = max(
                totalout([mp.mpf(amount)], x[i : i + 1], y[i : i + 1], fees[i : i + 1])
                for i in range(len(x))
            )
            gap = float((ref - opt) / ref)
        rows.append(
            {
                "pools": len(x),
                "active": int(np.count_nonzero(legs)),
                "vs_greedy_bps": _bps(opt, greedy),
                "vs_single_bps": _bps(opt, single),
                "gap": gap,
            }
        )

    def summary(sel: list[dict]) -> dict:
        return {
            "cases": len(sel),
            "worst_vs_greedy_bps": min(r["vs_greedy_bps"] for r in sel),
            "median_vs_greedy_bps": median(r["vs_greedy_bps"] for r in sel),
            "median_vs_single_pool_bps": median(r["vs_single_bps"] for r in sel),
            "optimality_gap_max": max(r["gap"] for r in sel),
            "mean_active_pools": round(sum(r["active"] for r in sel) / len(sel), 3),
        }

    result = {
        **summary(rows),
        "seed": seed,
        "greedy_step": 1 / GREEDY_STEPS,
        "reference": f"generic KKT solve in mpmath ({DPS} digits), derivatives only",
        "by_pool_count": {
            str(n): summary([r for r in rows if r["pools"] == n]) for n in range(2, 7)
        },
    }
    return result


def _table(result: dict) -> str:
    head = (
        f"{'pools':>5} {'cases':>5} {'active':>6} {'vs greedy med':>14} {'vs greedy worst':>16} "
        f"{'vs single med':>14} {'gap max (rel)':>14}"
    )
    lines = [head, "-" * len(head)]
    groups = [*result["by_pool_count"].items(), ("all", result)]
    for name, s in groups:
        lines.append(
            f"{name:>5} {s['cases']:>5} {s['mean_active_pools']:>6.2f} "
            f"{s['median_vs_greedy_bps']:>11.4f} bp {s['worst_vs_greedy_bps']:>13.4f} bp "
            f"{s['median_vs_single_pool_bps']:>11.3f} bp {s['optimality_gap_max']:>14.2e}"
        )
    return "\n".join(lines)


def main() -> dict:
    """Run the benchmark, write bench/results/routing.json, print the table."""
    result = run()
    path = write_result("routing", result, COMMAND)
    print("optimal split (closed form) vs greedy 5% steps, best single pool, generic solver")
    print(_table(result))
    print(f"wrote {path.relative_to(path.parents[2])}")
    return result


if __name__ == "__main__":
    main()
