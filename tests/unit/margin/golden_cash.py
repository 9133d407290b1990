"""The golden cash sequence: a random sequence of deposits, borrows, repayments, withdrawals,
reserve collections, parameter changes and time, with what keeper/interest.py says the engine
holds after each step (indices, every account's shares, totals, utilization, rate, reserve).
`tests/unit/margin/test_cash_interest.py` replays it against MarginEngine and compares every
number to the wei.

Regenerate (only when the rules change, and say why in the commit):
    .venv/bin/python -m tests.unit.margin.golden_cash
which writes tests/unit/margin/golden_cash.json (seeded: the same file every time).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from keeper.interest import WAD, CashError, Pool, RateParams

PATH = Path(__file__).with_name("golden_cash.json")
SEED = 23
STEPS = 160
USD = 10**6  # cash-token units per USD (6 decimals)
SCALE = 10**12  # token units to wad
SUPPLIERS = ("s0", "s1", "s2")
BORROWERS = ("b0", "b1")
FUND = "fund"
# Each borrower posts this much WETH, so that the margin rule never binds and the interest
# rules alone decide (borrows stay far below its collateral).
BORROWER_WETH = 1_000
MAX_DEBT_USD = 400_000
PARAMS = (
    RateParams(WAD // 50, WAD // 10, WAD, WAD * 8 // 10, WAD // 10, WAD * 9 // 10),
    RateParams(0, WAD // 4, 3 * WAD, WAD * 5 // 10, WAD // 5, WAD * 6 // 10),
    RateParams(WAD // 10, WAD, 3 * WAD, WAD * 99 // 100, 0, WAD),
)


def state(pool: Pool, now: int) -> dict[str, Any]:
    """Everything the test compares after a step, at block time `now`."""
    view = pool.at(now)
    return {
        "supply_index": view.supply_index,
        "borrow_index": view.borrow_index,
        "total_supply": view.total_supply(),
        "total_borrows": view.total_borrows(),
        "utilization": view.utilization(),
        "rate": view.borrow_rate(),
        "reserve": view.reserve(),
        "totals": [pool.total_supply_shares, pool.total_borrow_shares],
        "accounts": {
            a: [pool.shares.get(a, 0), pool.debts.get(a, 0), view.cash(a)]
            for a in (*SUPPLIERS, *BORROWERS, FUND)
        },
    }


def generate(seed: int = SEED, steps: int = STEPS) -> dict[str, Any]:
    rng = random.Random(seed)
    pool = Pool(PARAMS[0])
    now = 0
    tokens = 0  # cash tokens the engine holds (token units)
    out: list[dict[str, Any]] = []
    for _ in range(steps):
        kind = rng.choices(
            ("deposit", "withdraw", "borrow", "repay", "time", "collect", "params"),
            (5, 3, 5, 3, 5, 1, 1),
        )[0]
        step: dict[str, Any] = {"kind": kind}
        try:
            if kind == "time":
                step["seconds"] = rng.choice((1, 60, 3600, 86_400, 7 * 86_400, 30 * 86_400))
                now += step["seconds"]
            elif kind == "deposit" or kind == "repay":
                who = rng.choice(SUPPLIERS if kind == "deposit" else BORROWERS)
                units = rng.randint(1, 300_000 * USD)
                if kind == "repay":
                    owed = -pool.at(now).cash(who)
                    if owed <= 0:
                        continue
                    units = min(units, owed // SCALE + rng.choice((0, 1, 1000 * USD)))
                step |= {"who": who, "units": units}
                pool.add_cash(who, units * SCALE, now)
                tokens += units
            elif kind == "withdraw":
                who = rng.choice(SUPPLIERS)
                held = pool.at(now).cash(who) // SCALE
                units = min(rng.randint(1, max(held, 1)), held, tokens)
                if units <= 0:
                    continue
                step |= {"who": who, "units": units}
                pool.borrowed(who, units * SCALE, now)
                tokens -= units
            elif kind == "borrow":
                who = rng.choice(BORROWERS)
                room = MAX_DEBT_USD * USD + pool.at(now).cash(who) // SCALE
                units = min(rng.randint(1, 200_000 * USD), room, tokens)
                if units <= 0:
                    continue
                step |= {"who": who, "units": units}
                pool.borrowed(who, units * SCALE, now)
                tokens -= units
            elif kind == "collect":
                pool.collect_reserve(FUND, now)
            else:
                params = rng.choice(PARAMS)
                step["params"] = list(params.as_tuple())
                pool.set_params(params, now)
        except CashError as e:
            step["reverts"] = str(e)
        step["state"] = state(pool, now)
        out.append(step)
    return {
        "seed": seed,
        "params": list(PARAMS[0].as_tuple()),
        "borrower_weth": BORROWER_WETH,
        "steps": out,
    }


def main() -> None:
    data = generate()
    PATH.write_text(json.dumps(data, indent=1) + "\n")
    kinds = [s["kind"] for s in data["steps"]]
    reverts = sum("reverts" in s for s in data["steps"])
    print(f"wrote {PATH.name}: {len(kinds)} steps, {reverts} expected reverts")


if __name__ == "__main__":
    main()
