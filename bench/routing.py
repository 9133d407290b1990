"""Routing benchmark: the closed-form optimal split vs greedy, single-pool and a generic solver.

Over CASES random 2-6-pool cases (seeded), it compares the output of `keeper.routing.optimal_split`
with three anchors, all evaluated in 50-digit mpmath on the unrounded pool formula
y*g*a / (x + g*a):

- greedy: Uniswap-style splitting in 5% steps: the order is cut into 20 equal chunks and each
  chunk goes to the pool whose output grows most from it, given the chunks already placed
  (what Uniswap's smart order router does with its 5% distribution);
- single pool: the whole order in the pool that pays most for it;
- a generic convex solver: the KKT conditions solved numerically in mpmath from nothing but
  each pool's first and second derivatives (safeguarded Newton for each pool's leg at a given
  marginal level, safeguarded Newton on log(lambda) for the budget), to ~1e-40 relative;
  it never uses the closed form.

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

COMMAND = "python -m bench.routing"
CASES = 240
SEED = 20_240_601
GREEDY_STEPS = 20
FEES_BPS = (1, 5, 30, 100)
DPS = 50


Pool = tuple[mp.mpf, mp.mpf, mp.mpf]  # (x, y, g)


def _out(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return y * g * a / (x + g * a) if a > 0 else mp.mpf(0)


def _d1(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return g * x * y / (x + g * a) ** 2


def _d2(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return -2 * g * g * x * y / (x + g * a) ** 3


def _newton_bisect(fun, lo: mp.mpf, hi: mp.mpf, tol: mp.mpf) -> mp.mpf:
    """Root of a decreasing function on [lo, hi] (fun(lo) > 0 > fun(hi)) by Newton's method
    safeguarded with bisection (Numerical Recipes' rtsafe): a Newton step that leaves the
    bracket or does not halve the step before it is replaced by a bisection. `fun` returns
    (value, derivative)."""
    u = (lo + hi) / 2
    dx_old = hi - lo
    dx = dx_old
    for _ in range(400):
        val, der = fun(u)
        if val == 0:
            return u
        if val > 0:
            lo = u
        else:
            hi = u
        newton = u - val / der if der != 0 else None
        if newton is None or not lo < newton < hi or abs(2 * val) > abs(dx_old * der):
            dx_old, dx = dx, (hi - lo) / 2
            u = lo + dx
        else:
            dx_old, dx = dx, u - newton
            u = newton
        if abs(dx) <= tol * (1 + abs(u)):
            return u
    raise RuntimeError("reference solver did not converge")


def _leg_at_level(pool: Pool, lam: mp.mpf, tol: mp.mpf) -> mp.mpf:
    """Solve out'(a) = lam for a >= 0 (0 when out'(0) <= lam) as the root of
    psi(a) = log out'(a) - log lam, which decreases in a for any concave out; the bracket's top
    is found by doubling."""
    if _d1(pool, mp.mpf(0)) <= lam:
        return mp.mpf(0)
    up = mp.mpf(1)
    while _d1(pool, up) > lam:
        up *= 2
    log_lam = mp.log(lam)

    def psi(a: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
        d1 = _d1(pool, a)
        return mp.log(d1) - log_lam, _d2(pool, a) / d1

    return _newton_bisect(psi, mp.mpf(0), up, tol)


def reference_split(amount: float, x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> list[mp.mpf]:
    """Generic KKT solve in mpmath: find lambda with sum_i a_i(lambda) = amount, where a_i solves
    out_i'(a) = lambda (0 when out_i'(0) <= lambda). Uses only out' and out'' (no closed form);
    both levels are safeguarded Newton iterations (`_newton_bisect`) to ~1e-40 relative."""
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        big_a = mp.mpf(amount)
        tol = mp.mpf(10) ** (-(DPS - 10))
        # Bracket for u = log(lambda): at the top nobody trades (sum = 0 < amount); at the
        # bottom the pool with the flattest curve alone takes at least the whole amount.
        hi = mp.log(max(_d1(p, mp.mpf(0)) for p in pools))
        lo = mp.log(min(_d1(p, big_a) for p in pools))
        legs: list[mp.mpf] = []

        def excess(u: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
            nonlocal legs
            lam = mp.exp(u)
            legs = [_leg_at_level(p, lam, tol) for p in pools]
            # d(sum a_i)/du = lambda * sum 1/out_i''(a_i) over the legs that trade.
            slope = lam * mp.fsum(1 / _d2(p, a) for p, a in zip(pools, legs, strict=True) if a > 0)
            return mp.fsum(legs) - big_a, slope

        u = _newton_bisect(excess, lo, hi, tol)
        excess(u)
        return legs


def greedy_split(amount: float, x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> list[mp.mpf]:
    """Uniswap-style: GREEDY_STEPS equal chunks, each to the pool with the largest increment."""
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        chunk = mp.mpf(amount) / GREEDY_STEPS
        legs = [mp.mpf(0)] * len(pools)
        for _ in range(GREEDY_STEPS):
            gains = [_out(p, a + chunk) - _out(p, a) for p, a in zip(pools, legs, strict=True)]
            best = max(range(len(pools)), key=gains.__getitem__)
            legs[best] += chunk
        return legs


def total_out(legs: list[mp.mpf], x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> mp.mpf:
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        return mp.fsum(_out(p, mp.mpf(a)) for p, a in zip(pools, legs, strict=True))


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
            opt = total_out(legs_mp, x, y, fees)
            ref = total_out(reference_split(amount, x, y, fees), x, y, fees)
            greedy = total_out(greedy_split(amount, x, y, fees), x, y, fees)
            single = max(
                total_out([mp.mpf(amount)], x[i : i + 1], y[i : i + 1], fees[i : i + 1])
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
